"""The run store on real SQLite files: metrics, idempotent ingest, damaged and newer event lines,
schema and journal mode, lookups, lost runs, and several processes ingesting one run at once."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from sqlite_utils import Database

from engine import metrics as engine_metrics
from engine.config import ConfigError
from seca_tui import export, metrics, run_filter
from seca_tui.process import HOST
from seca_tui.store import MIGRATIONS, Store, UnknownRun, journal_mode
from tests.runlog import line, run_events, write_run

REPO = Path(__file__).resolve().parents[1]
MATRIX = [[60.0], [80.0, 90.0], [70.0, 85.0, 88.0]]
COUNTS = [10, 20, 30]


@pytest.fixture
def store(home) -> Store:
    return Store.open(home)


def dump(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    tables = [r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(map(repr, store.db.execute(f"SELECT * FROM {t}"))) for t in tables}


# ----------------------------------------------------------------------------------------- metrics


def test_metrics_by_hand():
    # forgetting uses the best earlier accuracy (80 on task 0, after task 1), BWT the diagonal (60):
    # forgetting = ((80 - 70) + (90 - 85)) / 2 = 7.5; BWT = ((70 - 60) + (85 - 90)) / 2 = 2.5.
    assert metrics.forgetting(MATRIX) == pytest.approx(7.5)
    assert metrics.bwt(MATRIX) == pytest.approx(2.5)
    assert metrics.forgetting(MATRIX) != -metrics.bwt(MATRIX)
    assert metrics.incremental_accuracy([80.0, 60.0], [10, 30]) == pytest.approx(65.0)
    assert metrics.average([50.0, 70.0]) == 60.0


def test_metrics_undefined_for_one_task():
    assert metrics.forgetting([[75.0]]) is None
    assert metrics.bwt([[75.0]]) is None
    assert metrics.summary([], []) == {"last": None, "avg": None, "forgetting": None, "bwt": None}


@given(st.integers(1, 6).flatmap(lambda t: st.tuples(
    st.lists(st.lists(st.floats(0, 100), min_size=t, max_size=t), min_size=t, max_size=t),
    st.lists(st.integers(1, 50), min_size=t, max_size=t))))
def test_metrics_match_the_engine(case):
    full, counts = case
    matrix = [row[: t + 1] for t, row in enumerate(full)]
    accs = [metrics.incremental_accuracy(row, counts) for row in matrix]
    ours = metrics.summary(matrix, accs)
    theirs = engine_metrics.summary(matrix, counts)
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key]) if theirs[key] is not None else ours[key] is None


# ----------------------------------------------------------------------------------------- ingest


def test_ingest_builds_rows_and_is_idempotent(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX, COUNTS))
    report = store.ingest(run_dir)
    assert report.new_events == 1 + 3 * 7 + 1 and not report.bad_lines
    before = dump(store)
    assert not store.ingest(run_dir)  # nothing new
    store.db.execute("DELETE FROM ingest_state")  # a lost offset: re-reading must not duplicate rows
    assert store.ingest(run_dir).new_events == 0
    assert dump(store) == before

    run = store.run("r1")
    assert run["status"] == "finished" and run["split"] == "3x2" and run["n_tasks"] == 3
    assert run["matrix"] == [[60.0, None, None], [80.0, 90.0, None], [70.0, 85.0, 88.0]]
    rows = store.task_rows("r1")
    assert [r["forgetting"] for r in rows] == [None, pytest.approx(-20.0), pytest.approx(7.5)]  # 60 then 80: negative forgetting
    assert rows[2]["bwt"] == pytest.approx(2.5) and rows[1]["seconds"] == 2.5
    assert rows[0]["ips"] == pytest.approx((100 + 1 / 3 + 100 + 2 / 3 + 101) / 3)
    assert len(store.steps("r1")) == 9 and store.steps("r1")[0]["losses"] == {"ce": 1.0, "kd": 0.5}
    assert store.latest("r1", "eval")["after_task"] == 2
    assert [e["seq"] for e in store.events("r1", after_seq=20, types=["eval", "run_finished"])] == [22]


def test_ingest_with_nothing_new_takes_no_write_lock(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX, COUNTS))
    store.ingest(run_dir)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        t0 = time.perf_counter()
        assert not store.ingest(run_dir) and store.ingest_all() == {}
        assert time.perf_counter() - t0 < 1  # it did not wait for the lock
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_half_written_line_waits_for_its_newline(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX, COUNTS)[:3])
    tail = line(3, "heartbeat")
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(tail[:10])
    assert store.ingest(run_dir).new_events == 3
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(tail[10:] + line(4, "heartbeat"))
    report = store.ingest(run_dir)
    assert report.new_events == 2 and report.bad_lines == []
    assert [e["seq"] for e in store.events("r1")] == [0, 1, 2, 3, 4]


def test_garbled_line_is_skipped_and_numbered(store):
    run_dir = write_run(store.runs_dir, "r1", [("heartbeat", {})])
    with open(run_dir / "events.jsonl", "a") as f:
        f.write('{"v": 1, "seq": 1, "ty\n' + line(2, "heartbeat") + "[1, 2]\n")
    report = store.ingest(run_dir)
    assert report.bad_lines == [2, 4] and report.new_events == 2
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(line(3, "heartbeat") + "\xff not json\n")
    assert store.ingest(run_dir).bad_lines == [6]  # numbers count from the file's start


def test_newer_schema_events_are_kept_raw(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps({"v": 2, "seq": 100, "ts": 1.0, "type": "eval", "after_task": 1, "shiny": True}) + "\n")
    report = store.ingest(run_dir)
    assert report.newer_lines == [len(run_events(MATRIX[:1], COUNTS, finish=False)) + 1]
    assert store.latest("r1", "eval") == {"v": 2, "seq": 100, "ts": 1.0, "type": "eval", "after_task": 1, "shiny": True}
    assert [r["task"] for r in store.task_rows("r1")] == [0]  # its fields were not interpreted


def test_ingest_all_finds_hand_made_run_dirs_and_skips_unchanged(store):
    write_run(store.runs_dir, "a", run_events(MATRIX, COUNTS))
    write_run(store.runs_dir, "b", run_events(MATRIX[:2], COUNTS, finish=False))
    assert set(store.ingest_all()) == {"a", "b"}
    assert store.ingest_all() == {}
    write_run(store.runs_dir, "b", [("heartbeat", {})], start_seq=100)
    assert list(store.ingest_all()) == ["b"]
    assert {r["run_id"]: r["status"] for r in store.runs()} == {"a": "finished", "b": "running"}


def test_failed_run_and_a_resume_after_it(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False)
                        + [("run_failed", {"error": "CUDA out of memory", "traceback": "..."})])
    store.ingest(run_dir)
    assert store.run("r1")["status"] == "failed" and store.run("r1")["error"] == "CUDA out of memory"
    store.update_run("r1", status="running", finished=None, error=None)  # what the launcher does
    write_run(store.runs_dir, "r1", [("eval", {"after_task": 1, "task_acc": [50.0, 60.0], "task_n": [1, 1],
                                               "acc": 55.0}), ("run_finished", {"last": 55.0, "avg": 1.0})],
              start_seq=50)
    store.ingest(run_dir)
    run = store.run("r1")
    assert (run["status"], run["last"], run["error"]) == ("finished", 55.0, None)


# ----------------------------------------------------------------------------------------- schema & journal


def test_schema_version_and_newer_database(home):
    store = Store.open(home)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    Store.open(home)  # opening again migrates nothing
    conn = sqlite3.connect(store.path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(ConfigError, match="newer seca-tui"):
        Store.open(home)


def test_an_older_database_is_migrated(home):
    home.mkdir()
    db = Database(sqlite3.connect(home / "runs.db", isolation_level=None))
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db["runs"].insert({"run_id": "old", "status": "running"})
    db.close()
    store = Store.open(home)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.run("old")["status"] == "running" and store.run("old")["stop_requested"] is None


def test_schema_6_flattens_the_configs_of_a_schema_5_store(home):
    """Runs logged before config_flat existed get it on opening: their records, spliced from it, are those
    built from each config; a run without a config has none."""
    home.mkdir()
    db = Database(sqlite3.connect(home / "runs.db", isolation_level=None))
    for migration in MIGRATIONS[:5]:
        migration(db)
    db.execute("PRAGMA user_version = 5")
    config = {"method": "seca", "train": {"lr": 1e-3, "milestones": [2, 5], "sum": 0.1 + 0.2},
              "seca": {"kd": "mean", "on": True, "off": None}, "note": "naïve ✓"}
    db["runs"].insert_all([{"run_id": "with", "status": "finished", "created": 2.0, "config": json.dumps(config)},
                           {"run_id": "without", "status": "queued", "created": 1.0},
                           # as an older seca-tui stored a hand-edited `lr: .inf`: JSON that SQLite cannot read
                           {"run_id": "infinite", "status": "failed", "created": 0.0,
                            "config": json.dumps({"method": "seca", "train": {"lr": float("inf")}})}])
    db.close()
    store = Store.open(home)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    listed = store.runs(for_records=True)
    assert [export.record_text(r) for r in listed] == [json.dumps(export.run_record(store.run(r)))
                                                       for r in ("with", "without", "infinite")]
    assert listed[0]["config_flat"] is not None and listed[1]["config_flat"] is None
    assert json.loads(export.record_text(listed[2]))["config.train.lr"] == "inf"
    assert "config_flat" not in store.runs()[0]  # 2 KB a run that only records read
    assert json.loads(export.record_text(listed[0]))["config.train.sum"] == 0.1 + 0.2


def test_an_infinite_value_in_a_config_yaml_lists_as_its_text(store):
    """SQLite's JSON functions refuse Infinity and NaN: a hand-edited config.yaml with `.inf` once made
    every listing of the run log fail ("malformed JSON"). It is kept as its text."""
    for run_id, lr in (("r1", ".inf"), ("r2", "0.1")):  # r2: the same but finite
        run_dir = write_run(store.runs_dir, run_id, [])
        (run_dir / "config.yaml").write_text(f"method: seca\nseca: {{kd: none}}\ntrain: {{lr: {lr}, wd: [.nan, 1.0]}}\n")
    store.ingest_all()
    infinite, finite = sorted(store.runs(with_config=True), key=lambda r: r["run_id"])
    assert infinite["variant"] == finite["variant"] == "seca*"  # the switches are still read from the config
    assert json.loads(infinite["config_json"])["train"] == {"lr": "inf", "wd": ["nan", 1.0]}
    listed = {r["run_id"]: json.loads(export.record_text(r)) for r in store.runs(for_records=True)}
    assert (listed["r1"]["config.train.lr"], listed["r2"]["config.train.lr"]) == ("inf", 0.1)


def test_configs_written_by_a_seca_tui_from_before_schema_6_are_listed_as_they_are_now(store):
    """One still running after an upgrade writes configs without config_flat (its ingest replaces one, its
    register inserts one): the records follow the configs it wrote, never a flat config from before."""
    write_run(store.runs_dir, "r1", run_events(MATRIX, COUNTS))
    store.ingest_all()
    changed = json.dumps({"method": "seca", "train": {"lr": 0.5, "milestones": [3]}})
    old = sqlite3.connect(store.path, isolation_level=None)  # its own connection, as another process has
    old.execute("UPDATE runs SET status = 'running', config = ? WHERE run_id = 'r1'", [changed])
    old.execute("INSERT INTO runs (run_id, status, created, config) VALUES ('r2', 'queued', 1.0, ?)", [changed])
    old.close()
    listed = store.runs(for_records=True)
    assert [export.record_text(r) for r in listed] == [json.dumps(export.run_record(store.run(r["run_id"])))
                                                       for r in listed]
    assert [json.loads(export.record_text(r))["config.train.lr"] for r in listed] == [0.5, 0.5]
    assert [r["config.train.lr"] for r in export.run_records(listed)] == [0.5, 0.5]


def test_journal_mode_follows_the_filesystem(home, monkeypatch):
    monkeypatch.delenv("SECA_TUI_JOURNAL", raising=False)
    store = Store.open(home)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # tmp is a local disk
    mounts = ("/dev/sda1 / ext4 rw 0 0\n"
              "server:/export /home nfs4 rw 0 0\n"
              "/dev/sdb1 /home/me/scratch xfs rw 0 0\n"
              "sshfs#x /mnt/my\\040drive fuse.sshfs rw 0 0\n")
    assert journal_mode(Path("/home/me/runs"), mounts) == "delete"
    assert journal_mode(Path("/home/me/scratch/runs"), mounts) == "wal"  # the longest mount point wins
    assert journal_mode(Path("/mnt/my drive/x"), mounts) == "delete"
    assert journal_mode(Path("/var/x"), mounts) == "wal"
    monkeypatch.setenv("SECA_TUI_JOURNAL", "delete")
    assert journal_mode(Path("/var/x"), mounts) == "delete"


# ----------------------------------------------------------------------------------------- lookups & edits


def test_resolve_by_id_prefix_and_name(store):
    for run_id, name in [("20261128-101010-aaaa", "base"), ("20261128-101010-bbbb", "ablation"),
                         ("20261129-090000-cccc", "base-2")]:
        (store.runs_dir / run_id).mkdir(parents=True)
        store.register(store.runs_dir / run_id, name=name)
    assert store.resolve("20261129") == "20261129-090000-cccc"
    assert store.resolve("base") == "20261128-101010-aaaa"  # an exact name beats a prefix of base-2
    assert store.resolve("abl") == "20261128-101010-bbbb"
    with pytest.raises(UnknownRun, match="matches 3 runs"):
        store.resolve("2026")
    with pytest.raises(UnknownRun, match="No run matches 'nope'"):
        store.resolve("nope")


def test_tags_notes_archive_and_search(store):
    for run_id in ("r1", "r2"):
        (store.runs_dir / run_id).mkdir(parents=True)
        store.register(store.runs_dir / run_id)
    store.set_tags("r1", ["paper", "baseline", "paper"])
    store.set_notes("r2", "lr sweep")
    store.set_archived("r2", True)
    assert store.run("r1")["tags"] == ["baseline", "paper"]
    assert [r["run_id"] for r in store.runs()] == ["r1"]
    assert [r["run_id"] for r in run_filter.search(store.runs(include_archived=True), "SWEEP")] == ["r2"]
    assert [r["run_id"] for r in run_filter.search(store.runs(), "paper")] == ["r1"]
    assert run_filter.search(store.runs(include_archived=True), "paper\nlr") == []  # never across two fields
    assert store.runs(status="finished") == []
    assert store.run("missing") is None


# ----------------------------------------------------------------------------------------- lost runs


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_whose_process_is_gone_is_lost(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))
    (run_dir / "engine.log").write_text("starting\nKilled by the OOM killer\n\n")
    store.ingest(run_dir)
    store.update_run("r1", pid=dead_pid(), host=None)
    assert store.mark_lost() == ["r1"]
    assert store.run("r1")["status"] == "lost" and store.run("r1")["error"] == "Killed by the OOM killer"
    assert store.mark_lost() == []


def test_a_final_event_not_yet_read_is_not_lost(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))
    store.ingest(run_dir)
    store.update_run("r1", pid=dead_pid())
    write_run(store.runs_dir, "r1", [("run_stopped", {"after_task": 0})], start_seq=40)
    assert store.mark_lost() == []
    assert store.run("r1")["status"] == "stopped"


def test_a_run_on_another_host_is_lost_by_heartbeat_age(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))
    store.ingest(run_dir)
    store.update_run("r1", pid=1, host="elsewhere", heartbeat_ts=time.time() - 5)
    assert store.mark_lost(stale_after=60) == []
    store.update_run("r1", heartbeat_ts=time.time() - 120)
    assert store.mark_lost(stale_after=60) == ["r1"]


def test_a_run_started_by_hand_is_judged_by_heartbeat(store):
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))  # no launch.json
    store.ingest(run_dir)
    assert store.run("r1")["pid"] is None and store.mark_lost() == []
    store.update_run("r1", heartbeat_ts=time.time() - 120)
    assert store.mark_lost() == ["r1"]
    run_dir = write_run(store.runs_dir, "r2", [("run_started", {"env": {"pid": dead_pid(), "host": HOST}})])
    store.ingest(run_dir)
    assert store.mark_lost() == ["r2"]  # its own pid, reported in run_started, is gone


def test_a_live_pid_of_another_program_is_not_the_run(store):
    run_dir = write_run(store.runs_dir, "r1", [("heartbeat", {})])
    store.ingest(run_dir)
    store.update_run("r1", status="running", pid=os.getpid())  # pytest, not this run's engine
    assert store.mark_lost() == ["r1"]


# ----------------------------------------------------------------------------------------- concurrency

APPENDER = """
import json, sys, time
path, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with open(path, "a") as f:
    for seq in range(n):
        kind = "step" if seq % 3 else "heartbeat"
        ev = {"v": 1, "seq": seq, "ts": time.time(), "type": kind}
        if kind == "step":
            ev.update(task=0, epoch=0, step=seq, steps_total=n, lr=0.1, ips=1.0, losses={"ce": 1.0})
        text = json.dumps(ev) + "\\n"
        cut = seq % 7 == 0  # sometimes the reader sees half a line
        f.write(text[:5] if cut else text); f.flush()
        if cut:
            time.sleep(0.001); f.write(text[5:]); f.flush()
        time.sleep(seconds / n)
"""

WORKER = """
import sys, time
from seca_tui.store import Store
db, run_dir, role, until = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
store = Store(db)
rounds = 0
while time.time() < until:
    if role == "ingest":
        store.ingest(run_dir)
    else:
        store.runs(); store.events("r1", after_seq=len(store.steps("r1")) - 50)
    rounds += 1
    time.sleep(0.005)  # a poller, as the TUI and CLI are (a tight loop starves others of the lock)
print(rounds)
"""


EXPORTER = """
import subprocess, sys, time
until, args = float(sys.argv[1]), sys.argv[2:]
exports, failures, rows = 0, [], []
while time.time() < until:
    done = subprocess.run([sys.executable, "-m", "seca_tui", *args], capture_output=True, text=True)
    exports += 1
    if done.returncode or "locked" in done.stderr:
        failures.append(done.stderr)
    rows.append(len(done.stdout.splitlines()) - 1)
print(exports, rows == sorted(rows))  # rows never go down: nothing once exported is lost
print("\\n".join(failures), file=sys.stderr)
"""


@pytest.mark.parametrize("journal, n, seconds", [("wal", 2000, 8.0), ("delete", 1000, 4.0)])
def test_two_ingesters_and_a_reader_lose_nothing(home, monkeypatch, journal, n, seconds):
    """Two TUIs (pollers that ingest and read) and `seca-tui export` processes (each a CLI that
    ingests, checks for lost runs, reads and writes CSV) on one store while the engine appends."""
    monkeypatch.setenv("SECA_TUI_JOURNAL", journal)  # delete: the rollback journal of network homes
    store = Store.open(home)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == journal
    run_dir = store.runs_dir / "r1"
    run_dir.mkdir(parents=True)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "SECA_TUI_JOURNAL": journal, "SECA_TUI_HOME": str(home)}
    until = time.time() + seconds + 1.0
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(run_dir / "events.jsonl"), str(n), str(seconds)])
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(store.path), str(run_dir), role, str(until)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for role in ("ingest", "ingest", "read")]
    exporters = [subprocess.Popen([sys.executable, "-c", EXPORTER, str(until), "export", *args, "--csv", "-"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for args in (["r1", "--table", "steps"], ["--all"])]
    assert appender.wait(60) == 0
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        assert "locked" not in err
        assert int(out) > 5  # it really ran alongside the others
    for exporter in exporters:
        out, err = exporter.communicate(timeout=60)
        assert exporter.returncode == 0 and not err.strip(), err
        count, growing = out.split()
        assert int(count) >= 2 and growing == "True"
    store.ingest(run_dir)
    seqs = [r[0] for r in store.db.execute("SELECT seq FROM events WHERE run_id = 'r1' ORDER BY seq")]
    assert seqs == list(range(n))
    assert len(store.steps("r1")) == sum(1 for s in range(n) if s % 3)
    exported = subprocess.run([sys.executable, "-m", "seca_tui", "export", "r1", "--table", "steps", "--csv", "-"],
                              env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(exported) - 1 == sum(1 for s in range(n) if s % 3)
