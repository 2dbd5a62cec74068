"""CSV export: exact columns, values equal to the store's rows, metrics equal to ones recomputed
straight from events.jsonl, floats that read back bit for bit; `runs --json` and `export --all`, built
from each run's stored flat config, equal to the records built from the config itself."""
from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seca_tui import export as export_module
from seca_tui.cli import app
from seca_tui.export import COLUMNS, run_record
from seca_tui.store import RUN_COLUMNS, Store
from tests.commands import ok
from tests.runlog import CONFIG, run_events, write_run

# Accuracies that print long (1/3, 0.1 + 0.2): a rounded write would not read back equal.
MATRIX_A = [[100 / 3], [0.1 + 0.2, 200 / 3], [12.345678901234567, 50.0, 2 / 7]]
MATRIX_B = [[90.0], [70.0, 80.0]]
COUNTS = [7, 11, 13]


@pytest.fixture
def store(home) -> Store:
    store = Store.open(home)
    write_run(store.runs_dir, "a", run_events(MATRIX_A, COUNTS))
    write_run(store.runs_dir, "b", run_events(MATRIX_B, COUNTS, config={**CONFIG, "method": "hpeft"},
                                              losses=("ce", "proto")))
    store.ingest_all()
    return store


def export(*args: str) -> list[dict]:
    """Run ``seca-tui export ... --csv -`` and parse its output with the csv module."""
    result = CliRunner().invoke(app, ["export", *args, "--csv", "-"])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(result.stdout.splitlines()))


def header(*args: str) -> list[str]:
    return CliRunner().invoke(app, ["export", *args, "--csv", "-"]).stdout.splitlines()[0].split(",")


def number(text: str) -> float | None:
    return float(text) if text else None


def recomputed(run_dir: Path) -> list[dict]:
    """Per-task metrics from the raw eval events, independently of seca_tui.metrics."""
    evals = [e for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines()) if e["type"] == "eval"]
    rows, accs = [], []
    for k, ev in enumerate(evals):
        matrix = [e["task_acc"] for e in evals[: k + 1]]
        accs.append(sum(a * n for a, n in zip(ev["task_acc"], ev["task_n"])) / sum(ev["task_n"]))
        old = range(k)
        rows.append({
            "acc": accs[-1],
            "avg_acc": sum(accs) / len(accs),
            "forgetting": sum(max(matrix[t][i] for t in range(i, k)) - matrix[k][i] for i in old) / k if k else None,
            "bwt": sum(matrix[k][i] - matrix[i][i] for i in old) / k if k else None,
        })
    return rows


def test_tasks_csv_matches_store_and_events(store):
    rows = export("a", "b")
    assert list(rows[0]) == COLUMNS["tasks"]
    assert [r["run_id"] for r in rows] == ["a"] * 3 + ["b"] * 2
    assert [r["task"] for r in rows] == ["1", "2", "3", "1", "2"]  # people count tasks from 1
    for run_id in ("a", "b"):
        mine = [r for r in rows if r["run_id"] == run_id]
        for row, stored, expected in zip(mine, store.task_rows(run_id), recomputed(store.runs_dir / run_id)):
            for key in ("acc", "avg_acc", "forgetting", "bwt", "seconds", "ips"):
                assert number(row[key]) == stored[key]  # exact: repr round-trips
            for key, value in expected.items():
                assert number(row[key]) == pytest.approx(value) if value is not None else row[key] == ""


def test_matrix_csv_round_trips_floats(store):
    rows = export("a", "--table", "matrix")
    assert list(rows[0]) == COLUMNS["matrix"]
    cells = {(int(r["after_task"]), int(r["eval_task"])): float(r["acc"]) for r in rows}
    assert cells == {(t + 1, i + 1): a for t, row in enumerate(MATRIX_A) for i, a in enumerate(row)}
    assert [int(r["n"]) for r in rows if r["after_task"] == "3"] == COUNTS


def test_steps_csv_has_a_column_per_loss_across_runs(store):
    assert header("a", "b", "--table", "steps") == COLUMNS["steps"] + ["ce", "kd", "proto"]
    rows = export("a", "b", "--table", "steps")
    assert len(rows) == 3 * 3 + 2 * 3
    first_b = next(r for r in rows if r["run_id"] == "b")
    assert first_b["kd"] == "" and float(first_b["proto"]) == 0.5
    assert [float(r["lr"]) for r in rows[:3]] == [s["lr"] for s in store.steps("a")[:3]]
    assert {r["task"] for r in rows if r["run_id"] == "a"} == {"1", "2", "3"}


def test_relevance_csv_has_a_row_per_cell(store):
    rows = export("a", "--table", "relevance")
    assert list(rows[0]) == COLUMNS["relevance"]
    assert len(rows) == sum(2 * (t + 1) for t in range(3))  # 2 classes x (t + 1) pool entries per task
    last = [r for r in rows if r["task"] == "3"]  # the third task, as people count
    assert (last[0]["row"], last[0]["col"], float(last[0]["value"])) == ("c4", "T1", 0.1)


def test_all_runs_csv_flattens_the_config(store):
    rows = export("--all")
    assert list(rows[0])[: len(RUN_COLUMNS)] == RUN_COLUMNS
    by_id = {r["run_id"]: r for r in rows}
    assert by_id["b"]["config.method"] == "hpeft" and by_id["a"]["config.train.lr"] == "0.001"
    for run_id, row in by_id.items():
        run = store.run(run_id)
        for key in ("last", "avg", "forgetting", "bwt", "created", "finished"):
            assert number(row[key]) == run[key]
        assert row["status"] == "finished" and int(row["n_tasks"]) == run["n_tasks"]


def test_export_to_a_file_and_its_mistakes(store, tmp_path):
    out = tmp_path / "tasks.csv"
    result = CliRunner().invoke(app, ["export", "a", "--csv", str(out)])
    assert result.exit_code == 0 and "Wrote 3 rows" in result.stderr
    with open(out, newline="") as f:
        assert len(list(csv.DictReader(f))) == 3
    for args, message in [(["a", "--all"], "either run ids or --all"), ([], "either run ids or --all"),
                          (["a", "--table", "losses"], "--table must be one of"),
                          (["zzz"], "No run matches 'zzz'")]:
        result = CliRunner().invoke(app, ["export", *args, "--csv", str(out)])
        assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["export", "a", "--csv", str(tmp_path / "no" / "such" / "dir.csv")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1


# ----------------------------------------------------------------------------------------- runs --json, export --all

# What a config holds that its flat form must keep as it is: nesting, lists, booleans, null, floats that
# print long or in exponent form, an empty section, text that JSON escapes, an int past 64 bits.
ODD = {"name": "odd", "method": "hpeft", "data": {"name": "shapes-r", "root": ""},
       "train": {"lr": 1e-3, "milestones": [2, 5], "deterministic": True, "sum": 0.1 + 0.2, "gamma": None,
                 "big": 2**70},
       "seca": {"kd": "mean", "deep": {"er": {"est": [1.5, "x", False, None]}}, "empty": {}},
       "note": 'naïve "quoted" \\ ✓'}
# What only a hand-written config.yaml holds: keys that are not text, a date (stored as its text).
YAML_ONLY = {2: "an int key", True: "a bool key", "when": datetime.date(2026, 11, 28)}


def later_config(runs_dir: Path, run_id: str, config: dict) -> None:
    """The run_started event of a run whose dir had no config: its config arrives with the event."""
    write_run(runs_dir, run_id, [("run_started", {"config": config, "tasks": [[0, 1], [2, 3]]})])


@pytest.fixture
def odd_store(home) -> Store:
    """Runs whose configs come from every writer: config.yaml (then replaced by run_started's), events
    alone, an empty config, none at all (archived), and one whose config comes later."""
    store = Store.open(home)
    yaml_dir = store.runs_dir / "yaml"
    yaml_dir.mkdir(parents=True)
    (yaml_dir / "config.yaml").write_text(yaml.safe_dump({**ODD, **YAML_ONLY}))
    (yaml_dir / "launch.json").write_text(json.dumps({"name": "from yaml", "tags": ["x"], "created": 1.0}))
    replaced = write_run(store.runs_dir, "replaced", run_events([[50.0]], [3], config=CONFIG))
    (replaced / "config.yaml").write_text(yaml.safe_dump(ODD))  # read first; run_started's config wins
    store.register(replaced)
    write_run(store.runs_dir, "events", run_events([[100 / 3], [0.1 + 0.2, 2 / 7]], [7, 11], config=ODD))
    write_run(store.runs_dir, "empty", run_events([[90.0]], [5], config={}))
    write_run(store.runs_dir, "nested-empty", run_events([[90.0]], [5], config={"seca": {}}))
    for run_id in ("none", "later"):
        (store.runs_dir / run_id).mkdir()
        (store.runs_dir / run_id / "launch.json").write_text(json.dumps({"name": run_id, "tags": ["x"]}))
    store.ingest_all()
    store.set_archived("none", True)
    return store


def unflattened(store: Store) -> int:
    """How many stored configs have no flat config beside them: every writer of schema 6 stores one."""
    return store.db.execute("SELECT count(*) FROM runs WHERE config IS NOT NULL AND config_flat IS NULL").fetchone()[0]


def listed_json(store: Store, **filters) -> str:
    """What `runs --json` printed before the flat config was stored: each run's record built from its
    parsed config (``store.run``), an item a line."""
    records = [json.dumps(run_record(store.run(r["run_id"]))) for r in store.runs(**filters)]
    return "[" + ",\n ".join(records) + "]\n"


def test_runs_json_is_each_run_record_exactly(odd_store):
    printed = ok("runs", "--json")
    assert printed == listed_json(odd_store)
    by_id = {r["run_id"]: r for r in json.loads(printed)}
    assert by_id["events"]["config.train.sum"] == 0.1 + 0.2 and by_id["events"]["config.seca.deep.er.est"] == [1.5, "x", False, None]
    assert by_id["yaml"]["config.2"] == "an int key" and by_id["yaml"]["config.true"] == "a bool key" and by_id["yaml"]["config.when"] == "2026-11-28"
    assert by_id["replaced"]["config.method"] == "seca" and "config.note" not in by_id["replaced"]
    assert not any(k.startswith("config.") for k in by_id["empty"]) and "none" not in by_id
    assert ok("runs", "--json", "--archived") == listed_json(odd_store, include_archived=True)
    assert unflattened(odd_store) == 0


def listed(run_id: str, *args: str) -> dict:
    """The record of one run that `runs --json ARGS` prints."""
    return next(r for r in json.loads(ok("runs", "--json", *args)) if r["run_id"] == run_id)


def test_a_config_that_arrives_later_is_listed(odd_store):
    assert not any(k.startswith("config.") for k in listed("later"))
    later_config(odd_store.runs_dir, "later", ODD)
    assert ok("runs", "--json") == listed_json(odd_store)
    assert listed("later")["config.train.lr"] == 1e-3 and unflattened(odd_store) == 0


@pytest.mark.parametrize("args, keep", [
    (["--where", "train.lr=1e-3"], lambda run: run["config"].get("train", {}).get("lr") == 1e-3),
    (["--where", "seca.deep.er.est=[1.5,x,False,None]"], lambda run: run["config"].get("seca", {}).get("deep")),
    (["--tag", "x"], lambda run: "x" in run["tags"]),
    (["--method", "hpeft"], lambda run: "hpeft" in (run["method"], run["variant"])),
    (["--status", "finished"], lambda run: run["status"] == "finished"),
])
def test_runs_json_filters_keep_the_same_runs(odd_store, args, keep):
    later_config(odd_store.runs_dir, "later", ODD)
    odd_store.ingest_all()
    runs = [odd_store.run(r["run_id"]) for r in odd_store.runs(status="finished" if "--status" in args else None)]
    expected = [json.dumps(run_record(run)) for run in runs if keep(run)]
    assert 0 < len(expected) < len(odd_store.runs())  # the filter tells runs apart
    assert ok("runs", "--json", *args) == "[" + ",\n ".join(expected) + "]\n"


def test_export_all_is_each_run_record(odd_store):
    later_config(odd_store.runs_dir, "later", ODD)
    odd_store.ingest_all()
    records = [run_record(odd_store.run(r["run_id"])) for r in odd_store.runs(include_archived=True)]
    columns = list(dict.fromkeys([*RUN_COLUMNS, *(k for record in records for k in record)]))
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows(
        [columns, *([export_module._cell(record.get(c)) for c in columns] for record in records)])
    assert ok("export", "--all", "--csv", "-") == expected.getvalue()
    assert "none" in expected.getvalue() and "0.30000000000000004" in expected.getvalue()  # archived runs too
    events = next(row for row in csv.DictReader(io.StringIO(expected.getvalue())) if row["run_id"] == "events")
    # booleans, lists and null as the JSON output writes them
    assert (events["config.train.deterministic"], events["config.train.milestones"], events["config.train.gamma"],
            events["config.seca.deep.er.est"]) == ("true", "[2, 5]", "", '[1.5, "x", false, null]')
