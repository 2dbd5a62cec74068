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
    monkeypatch.setenv("SECA_TUI_HOME", str(tmp_path / "home"))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:tiny:start -->\nold table\n<!-- results:tiny:end -->\noutro\n")
    assert results_table.main(["--preset", "tiny", "--trials", "2", "--runs", str(tmp_path / "runs"),
                               "--readme", str(readme), "--set", "train.epochs=1"]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:tiny:start -->\n| method | Last | Avg |") and text.endswith("<!-- results:tiny:end -->\noutro\n")
    assert "old table" not in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(rows) - {"method"} == set(results_table.METHODS)
    for label in results_table.METHODS:
        slug = label.lower().replace(" ", "-").replace("/", "").replace("+", "p")
        lasts = [json.loads((tmp_path / "runs" / "tiny" / f"{slug}-trial{t}" / "events.jsonl").read_text().splitlines()[-1])["last"]
                 for t in range(2)]
        assert f"{statistics.mean(lasts):.2f} ± {statistics.stdev(lasts):.2f}" in rows[label]
    # a second call reuses the finished runs instead of training again
    before = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("events.jsonl")}
    assert results_table.main(["--preset", "tiny", "--trials", "2", "--runs", str(tmp_path / "runs"),
                               "--readme", str(readme), "--set", "train.epochs=1"]) == 0
    assert before == {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("events.jsonl")}
