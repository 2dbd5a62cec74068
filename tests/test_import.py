"""`seca-tui import`: a per-task JSON-lines log of the Continual-CLIP lineage becomes an `imported`
run beside ours; a bad or cut-short file is refused by line number and imports nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from seca_tui import importers, metrics
from seca_tui.store import Store
from tests.commands import cli
from tests.test_cli import one_sentence_error

# A 4-task matrix made up for this test (row t: accuracy on tasks 0..t after task t).
MATRIX = [[91.5], [88.25, 93.0], [84.0, 90.5, 92.75], [80.5, 86.0, 89.25, 94.5]]


def log_lines(matrix=MATRIX, shift: float = 0.0) -> list[str]:
    """The log as the format writes it: A_t as a plain mean here, their forgetting/BWT made up (not §8)."""
    lines, accs = [], []
    for t, row in enumerate(matrix):
        row = [a + shift for a in row]
        acc = round(sum(row) / len(row), 2)
        accs.append(acc)
        lines.append(json.dumps({"task": t, "acc": acc, "avg_acc": round(sum(accs) / len(accs), 2),
                                 "forgetting": 1.5 * t, "acc_per_task": row, "bwt": -0.5 * t, "fwt": 70.0 + t}))
    lines.append(json.dumps({"last": accs[-1], "avg": round(sum(accs) / len(accs), 2)}))
    return lines


def write_log(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_imported_log_round_trips(home, tmp_path):
    lines = log_lines()
    path = write_log(tmp_path / "SECA", "trial=0.txt", lines)
    result = cli("import", str(path), "--dataset", "imagenet-r")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.splitlines()[-1]
    store = Store.open(home)
    run = store.run(run_id)
    final = json.loads(lines[-1])
    assert (run["status"], run["name"], run["method"], run["dataset"], run["n_tasks"]) == (
        "imported", "SECA-trial=0", "SECA (published)", "imagenet-r", 4)
    assert (run["last"], run["avg"]) == (final["last"], final["avg"])  # as published
    assert [row[: t + 1] for t, row in enumerate(run["matrix"])] == MATRIX
    assert run["forgetting"] == pytest.approx(metrics.forgetting(MATRIX))  # ours, §8, not their 4.5
    assert run["bwt"] == pytest.approx(metrics.bwt(MATRIX))
    assert run["forgetting"] != 4.5 and run["bwt"] != -1.5
    launch = json.loads((Path(run["run_dir"]) / "launch.json").read_text())
    assert launch["imported"]["published"] == {"last": final["last"], "avg": final["avg"], "forgetting": 4.5,
                                               "bwt": -1.5, "fwt": 73.0}
    assert "published" in result.stdout and "4.50" in result.stdout
    shown = cli("show", run_id).stdout
    assert f"Forgetting {run['forgetting']:.2f}" in shown  # ours, from the run log
    assert "Published Last 87.56  Avg 89.69  Forgetting 4.50  BWT -1.50  FWT 73.00" in shown
    # the run log rebuilt from the run dirs has it the same, still imported
    (home / "runs.db").unlink()
    again = Store.open(home)
    again.ingest_all()
    assert {k: again.run(run_id)[k] for k in ("status", "last", "avg", "forgetting", "bwt")} == \
        {k: run[k] for k in ("status", "last", "avg", "forgetting", "bwt")}
    one_sentence_error(cli("resume", run_id), run_id)  # nothing to resume: it never ran here


def test_imported_trials_group_in_results(home, tmp_path):
    paths = [write_log(tmp_path / "SECA", f"trial={k}.txt", log_lines(shift=k)) for k in range(3)]
    result = cli("import", *map(str, paths), "--method", "SECA, authors", "--dataset", "imagenet-r")
    assert result.exit_code == 0, result.output
    out = json.loads(cli("results", "--format", "json").stdout)
    assert [(g["method"], g["n"]) for g in out] == [("SECA, authors", 3)]
    lasts = [json.loads(log_lines(shift=k)[-1])["last"] for k in range(3)]
    assert out[0]["last_mean"] == pytest.approx(sum(lasts) / 3)
    assert Store.open(home).run(result.stdout.splitlines()[-2])["name"] == "SECA-trial=1"


@pytest.mark.parametrize("edit, fragments", [
    (lambda ls: ls[:-1], ["ends at line 4", "final"]),  # the last task written, the final line never
    (lambda ls: ls[:2] + [ls[2][:40]], ["line 3", "not a JSON object"]),  # torn mid-line
    (lambda ls: ls[:1] + [ls[2]] + ls[2:], ["line 2", "task 2", "task 1 comes next"]),
    (lambda ls: [ls[0].replace('"fwt"', '"fwd"')] + ls[1:], ["line 1", "lacks 'fwt'"]),
    (lambda ls: ls[:1] + [ls[1].replace("[88.25, 93.0]", "[88.25]")] + ls[2:], ["line 2", "acc_per_task", "2 accuracies"]),
    (lambda ls: [], ["is empty"]),
])
def test_a_bad_or_partial_file_imports_nothing(home, tmp_path, edit, fragments):
    good = write_log(tmp_path / "SECA", "trial=0.txt", log_lines())
    bad = write_log(tmp_path / "SECA", "trial=1.txt", edit(log_lines()))
    one_sentence_error(cli("import", str(good), str(bad)), str(bad), *fragments)
    assert Store.open(home).runs(include_archived=True) == []
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())
    assert not list(home.glob(".import-*"))


def test_parse_keeps_the_published_numbers():
    published = importers.parse_continual_clip("\n".join(log_lines()), "x")
    assert published.matrix == MATRIX
    assert published.theirs()["forgetting"] == 4.5 and published.ours()["forgetting"] == metrics.forgetting(MATRIX)
    assert [e["type"] for e in importers.events(published, {}, "r")] == ["run_started", *["eval"] * 4, "run_finished"]
