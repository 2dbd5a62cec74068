"""CSV export: exact columns, values equal to the store's rows, metrics equal to ones recomputed
straight from events.jsonl, floats that read back bit for bit."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seca_tui.cli import app
from seca_tui.export import COLUMNS
from seca_tui.store import RUN_COLUMNS, Store
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
