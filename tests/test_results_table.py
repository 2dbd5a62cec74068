"""The results-table command: real runs per (method, trial), mean ± std into the README's markers."""
import json
import statistics
import sys

import pytest

from tests.engine_runs import REPO

sys.path.insert(0, str(REPO / "scripts"))
import results_table  # noqa: E402

pytestmark = pytest.mark.slow


def test_table_is_what_the_runs_gave(tmp_path, monkeypatch):
    """Every variant × 2 trials of the tiny preset through the engine, the table from `seca-tui results`:
    each row's Last is mean ± std of its runs' run_finished events; a second call trains nothing."""
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:tiny:start -->\nold table\n<!-- results:tiny:end -->\noutro\n")
    argv = ["--preset", "tiny", "--trials", "2", "--home", str(tmp_path / "home"), "--readme", str(readme),
            "--set", "train.epochs=1"]
    assert results_table.main(argv) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:tiny:start -->\n| method |") and text.endswith("<!-- results:tiny:end -->\noutro\n")
    assert "old table" not in text
    lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {cells[0]: dict(zip(head, cells)) for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}
    assert set(rows) == set(results_table.METHODS)
    for label in results_table.METHODS:
        runs = tmp_path / "home" / "runs"
        lasts = [json.loads((runs / f"tiny-{results_table.slug(label)}-trial{t}" / "events.jsonl").read_text().splitlines()[-1])["last"]
                 for t in range(2)]
        assert rows[label]["Last"] == f"{statistics.mean(lasts):.2f} ± {statistics.stdev(lasts):.2f}"
        assert rows[label]["n"] == "2"
    # a second call reuses the finished runs instead of training again
    before = {p: p.stat().st_mtime for p in (tmp_path / "home" / "runs").rglob("events.jsonl")}
    assert results_table.main(argv) == 0
    assert before == {p: p.stat().st_mtime for p in (tmp_path / "home" / "runs").rglob("events.jsonl")}
