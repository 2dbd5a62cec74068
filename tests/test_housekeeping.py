"""Run housekeeping from the CLI: rm (asks, or --yes; refuses running runs), rename (unique names, kept
in launch.json), tag +t -t, run --tag, runs filters (--status/--tag/--method/--where), and the id's
last part resolving. Real SQLite, real run dirs written by hand; the engine is the fake one."""
from __future__ import annotations

import json
import time

import pytest

from seca_tui import launcher, progress
from seca_tui.store import RUN_TABLES, Store
from tests.commands import cli, ok
from tests.runlog import CONFIG, fake_engine, run_events, write_run
from tests.test_tui_fixtures import fake_engine as live_process

A, B = "20261128-100000-aaaa", "20261128-110000-bbbb"


@pytest.fixture
def runs(home) -> Store:
    """Two finished runs with launch.json: 'first' (seca, lr 0.001) and 'second' (hpeft, lr 0.01)."""
    store = Store.open(home)
    for run_id, name, config in ((A, "first", CONFIG),
                                 (B, "second", {**CONFIG, "method": "hpeft", "train": {"epochs": 2, "lr": 0.01}})):
        run_dir = write_run(store.runs_dir, run_id, run_events([[80.0], [60.0, 90.0]], [10, 10], config=config))
        (run_dir / "launch.json").write_text(json.dumps({"run_id": run_id, "name": name, "created": time.time()}))
    store.ingest_all()
    return store


def refused(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    return result.stderr


def rows_about(store: Store, run_id: str) -> int:
    return sum(store.db.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchone()[0] for t in RUN_TABLES)


def test_rm_deletes_the_run_dir_and_every_row(runs):
    assert rows_about(runs, A) > 10
    assert "Deleted run 20261128-100000-aaaa (first)." in ok("rm", "first", "--yes")
    assert not (runs.runs_dir / A).exists() and rows_about(runs, A) == 0
    assert [r["run_id"] for r in json.loads(ok("runs", "--json"))] == [B]  # an ingest does not bring it back
    assert (runs.runs_dir / B / "events.jsonl").exists()


def test_rm_asks_and_refuses_what_it_must_not_delete(runs, tmp_path):
    assert "add --yes" in refused("rm", A)  # no terminal to ask on
    c = "20261128-120000-cccc"
    run_dir = write_run(runs.runs_dir, c, run_events([[80.0], [60.0, 90.0]], [10, 10], finish=False))
    (run_dir / "launch.json").write_text(json.dumps({"run_id": c, "name": "live", "created": time.time()}))
    engines = [live_process(run_dir), live_process(runs.runs_dir / B)]  # B finished, its process still exits
    try:
        runs.ingest_all()
        assert runs.run(c)["status"] == "running"
        assert "Run live is running; stop it first." in refused("rm", A, c, "--yes")
        assert "Run second still has engine processes" in refused("rm", B, "--yes")
    finally:
        for engine in engines:
            engine.kill()
            engine.wait()
    assert all((runs.runs_dir / r).exists() and rows_about(runs, r) > 0 for r in (A, B, c))  # nothing deleted


def test_rename_is_unique_and_survives_a_rebuilt_run_log(runs, home):
    assert "is now named 'baseline'" in ok("rename", "first", "baseline")
    assert "Run 20261128-100000-aaaa is already named 'baseline'; choose another name." in refused("rename", B, "baseline")
    assert "cannot be empty" in refused("rename", B, " ")
    (home / "runs.db").unlink()  # rebuilt from the run dirs
    assert {r["run_id"]: r["name"] for r in json.loads(ok("runs", "--json"))} == {A: "baseline", B: "second"}


def test_tag_adds_and_removes_and_filters_use_them(runs, home):
    assert "tags: draft, lr-sweep, x." in ok("tag", "aaaa", "+draft", "lr-sweep,x")  # the id's last part resolves
    assert "tags: lr-sweep, x." in ok("tag", A, "-draft")
    assert "names no tag" in refused("tag", A, "+")
    assert [r["run_id"] for r in json.loads(ok("runs", "--tag", "x", "--json"))] == [A]
    assert ok("runs", "--tag", "x", "--tag", "nope") == "No runs match.\n"
    (home / "runs.db").unlink()
    assert json.loads(ok("show", A, "--json"))["run_id"] == A and Store.open(home).run(A)["tags"] == ["lr-sweep", "x"]


def test_runs_filters_by_method_and_config_values(runs):
    def listed(*args: str) -> list[str]:
        return [r["run_id"] for r in json.loads(ok("runs", "--json", *args))]

    assert listed("--method", "hpeft") == [B] and listed("--method", "seca", "--method", "hpeft") == [B, A]
    assert listed("--where", "lr=1e-3") == [A]  # the key's last part; 1e-3 read as the number it is
    assert listed("--where", "config.train.lr=0.01", "--where", "method=hpeft") == [B]
    assert listed("--where", "train.epochs=3") == []
    assert "No run has a config key 'train.lrr'." in refused("runs", "--where", "train.lrr=1")
    assert "key=value" in refused("runs", "--where", "lr")
    assert listed("--status", "finished", "--where", "data.name=shapes-r") == [B, A]


def test_run_tag_tags_the_run(home, tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "engine_command", fake_engine(tmp_path, seconds=0.3))
    monkeypatch.setattr(progress, "POLL_S", 0.05)
    run_id = ok("run", "tiny", "--tag", "exp1", "--tag", "cpu", "--detach").splitlines()[-1]
    assert Store.open(home).run(run_id)["tags"] == ["cpu", "exp1"]
    assert json.loads((home / "runs" / run_id / "launch.json").read_text())["tags"] == ["exp1", "cpu"]
