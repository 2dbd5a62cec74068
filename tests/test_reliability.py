"""Faults a run must survive, on the seca_tui side, with real processes and a real SQLite file.

Numbered as in the README's fault matrix: 1 the terminal dies, 2 the engine is SIGKILLed, 3 a
graceful stop, 4 a write fails, 5 damaged events.jsonl, 8 bad configuration and data through the
CLI, 10 property tests of the ingester. (6 and 9 are the engine's: tests/test_engine_faults.py; 7,
concurrent stores, is tests/test_store.py::test_two_ingesters_and_a_reader_lose_nothing.)
Tests that run the real engine are marked slow; they use the fixture preset with 30 epochs per
task (about 2 s a task on a CPU), so a fault can land in the middle of task 1.
"""
from __future__ import annotations

import errno
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from engine import metrics as engine_metrics
from engine.events import EventWriter
from seca_tui import export, ingest, launcher, progress
from seca_tui.cli import app
from seca_tui.export import run_record
from seca_tui.process import is_alive
from seca_tui.store import Store
from tests.commands import seca_process
from tests import engine_runs
from tests.engine_runs import wait_for
from tests.runlog import line, run_events, write_run

REPO = Path(__file__).resolve().parents[1]
EPOCHS = "train.epochs=30"
FINAL_EVENTS = ("run_finished", "run_failed", "run_stopped")


# ----------------------------------------------------------------------------------------- helpers


def events(run_dir: Path) -> list[dict]:
    """The complete lines of a run's events.jsonl (the engine may be writing the last one)."""
    try:
        data = (Path(run_dir) / "events.jsonl").read_bytes()
    except FileNotFoundError:
        return []
    return [json.loads(raw) for raw in data[: data.rfind(b"\n") + 1].splitlines()]


def has_event(run_dir: Path, predicate) -> bool:
    return any(predicate(e) for e in events(run_dir))


def in_task_1(e: dict) -> bool:
    return e["type"] == "step" and e["task"] == 1


def cli_env(home: Path) -> dict:
    return engine_runs.engine_env(home) | {"OMP_NUM_THREADS": "1"}


def seca(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``seca-tui ARGS`` as a real process on ``home``; must succeed."""
    return seca_process(cli_env(home), *args, timeout=timeout)


def finished_matrix(shown: dict) -> list[list[float]]:
    """``show --json``'s square matrix as rows a_{t,0..t}."""
    return [row[: t + 1] for t, row in enumerate(shown["matrix"])]


@pytest.fixture(scope="module")
def preset(tmp_path_factory) -> str:
    return engine_runs.fixture_preset(tmp_path_factory.mktemp("fixture"))


@pytest.fixture(scope="module")
def reference(preset, tmp_path_factory) -> list[list[float]]:
    """The accuracy matrix of an uninterrupted run of the same preset, straight through the engine."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    assert engine_runs.run(preset, run_dir, EPOCHS) == 0, (run_dir / "engine.log").read_text()[-3000:]
    return engine_runs.accuracy_matrix(engine_runs.events(run_dir))


def start_detached(home: Path, preset: str) -> tuple[str, Path]:
    run_id = seca(home, "run", preset, "--set", EPOCHS, "--detach").stdout.splitlines()[-1]
    return run_id, home / "runs" / run_id


def status_of(home: Path, run_id: str) -> str:
    return next(r["status"] for r in json.loads(seca(home, "runs", "--json").stdout) if r["run_id"] == run_id)


# ----------------------------------------------------------------------------------------- 1 terminal dies


@pytest.mark.slow
@pytest.mark.parametrize("how", ["hangup", "sigkill"])
def test_1_the_terminal_dies_mid_run_and_the_run_goes_on(preset, home, how):
    pid, fd = pty.fork()
    if pid == 0:  # seca-tui following a run on a real terminal, as over SSH
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "seca_tui", "run", preset, "--set", EPOCHS], cli_env(home))
    seen = b""
    deadline = time.time() + 180
    while b"after task 1/3" not in seen and time.time() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    assert b"after task 1/3" in seen, seen.decode(errors="replace")
    (run_dir,) = (home / "runs").iterdir()
    engine = launcher.read_launch(run_dir)["pid"]
    if how == "hangup":
        os.close(fd)  # the terminal goes away: the kernel hangs up its session (SIGHUP)
    else:
        os.kill(pid, signal.SIGKILL)
    _, code = os.waitpid(pid, 0)
    if how == "hangup" and os.WIFEXITED(code):
        # the kernel fails writes to the terminal (EIO) a moment before it sends SIGHUP: a write in that
        # moment ends seca-tui first, as the closed-output case (test_cli), exit 1
        assert os.WEXITSTATUS(code) == 1
    else:
        assert os.WIFSIGNALED(code) and os.WTERMSIG(code) == (signal.SIGHUP if how == "hangup" else signal.SIGKILL)
    if how == "sigkill":
        os.close(fd)
    assert not has_event(run_dir, lambda e: e["type"] in FINAL_EVENTS)  # it died mid-run...
    assert is_alive(engine, None, run_dir)  # ...and the engine did not die with it

    wait_for(lambda: has_event(run_dir, lambda e: e["type"] in FINAL_EVENTS), timeout=180)
    shown = json.loads(seca(home, "show", run_dir.name, "--json").stdout)
    evs = events(run_dir)
    assert evs[-1]["type"] == "run_finished" and shown["status"] == "finished"
    evals = [e for e in evs if e["type"] == "eval"]
    matrix = [e["task_acc"] for e in evals]
    assert finished_matrix(shown) == matrix
    expected = engine_metrics.summary(matrix, evals[-1]["task_n"])  # recomputed from the events alone
    for key in ("last", "avg", "forgetting", "bwt"):
        assert shown[key] == pytest.approx(expected[key])
    steps = seca(home, "export", run_dir.name, "--table", "steps", "--csv", "-").stdout.splitlines()
    assert len(steps) - 1 == sum(e["type"] == "step" for e in evs)  # the whole history, every step


# ----------------------------------------------------------------------------------------- 2 SIGKILL


@pytest.mark.slow
def test_2_an_engine_killed_mid_task_is_lost_at_once_and_resumes_to_the_same_matrix(preset, reference, home):
    run_id, run_dir = start_detached(home, preset)
    wait_for(lambda: has_event(run_dir, in_task_1), timeout=180)
    os.killpg(launcher.read_launch(run_dir)["pid"], signal.SIGKILL)  # the OOM killer, kill -9
    killed = time.time()
    wait_for(lambda: status_of(home, run_id) == "lost", timeout=30, interval=0.2)
    seconds = time.time() - killed
    print(f"\nlost {seconds:.2f} s after SIGKILL")
    assert seconds < 30
    assert not has_event(run_dir, lambda e: e["type"] in FINAL_EVENTS)

    seca(home, "resume", run_id, "--detach")
    wait_for(lambda: has_event(run_dir, lambda e: e["type"] in FINAL_EVENTS), timeout=180)
    evs = events(run_dir)
    starts = [k for k, e in enumerate(evs) if e["type"] == "run_started"]
    assert [evs[k]["resumed"] for k in starts] == [False, True] and evs[starts[1]]["after_task"] == 0
    assert [e["task"] for e in evs[starts[1]:] if e["type"] == "task_started"] == [1, 2]  # from the checkpoint
    shown = json.loads(seca(home, "show", run_id, "--json").stdout)
    assert shown["status"] == "finished"
    assert finished_matrix(shown) == reference  # deterministic CPU: as if never killed


# ----------------------------------------------------------------------------------------- 3 stop


@pytest.mark.slow
def test_3_stop_finishes_the_step_and_resume_finishes_the_run(preset, reference, home):
    run_id, run_dir = start_detached(home, preset)
    wait_for(lambda: has_event(run_dir, in_task_1), timeout=180)
    pid = launcher.read_launch(run_dir)["pid"]
    assert "Asked run" in seca(home, "stop", run_id[:17]).stdout
    wait_for(lambda: has_event(run_dir, lambda e: e["type"] in FINAL_EVENTS), timeout=60)
    wait_for(lambda: not is_alive(pid, None, run_dir), timeout=60)
    evs = events(run_dir)
    assert evs[-1] == {**evs[-1], "type": "run_stopped", "after_task": 0}
    steps = [e for e in evs if in_task_1(e)]
    assert evs[-2] == steps[-1]  # the step under way when SIGTERM came was finished and reported
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1)) and len(steps) < steps[0]["steps_total"]
    assert not any(e["type"] == "checkpoint" and e["task"] == 1 for e in evs)
    assert "Traceback" not in (run_dir / "engine.log").read_text()
    assert status_of(home, run_id) == "stopped"

    seca(home, "resume", run_id, "--detach")
    wait_for(lambda: events(run_dir)[-1]["type"] in ("run_finished", "run_failed"), timeout=180)
    shown = json.loads(seca(home, "show", run_id, "--json").stdout)
    assert shown["status"] == "finished" and finished_matrix(shown) == reference


# ----------------------------------------------------------------------------------------- 4 a write fails

MATRIX = [[60.0], [80.0, 90.0], [70.0, 85.0, 88.0]]
COUNTS = [10, 20, 30]


def dump(store: Store) -> dict[str, list]:
    tables = [r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(map(repr, store.db.execute(f"SELECT * FROM {t}"))) for t in tables}


def long_run(runs_dir: Path, run_id: str = "r1") -> Path:
    """A finished 3-task run with ~1,500 step events: enough rows to fill a few hundred pages."""
    evs = run_events(MATRIX, COUNTS)
    steps = [("step", {"task": 0, "epoch": 0, "step": k, "steps_total": 1500, "lr": 0.1, "ips": 1.0,
                       "losses": {"ce": 1.0 / k, "kd": 2.0 / k, "name": 0.5}}) for k in range(1, 1500)]
    return write_run(runs_dir, run_id, evs[:1] + steps + evs[1:])


def test_4_an_ingest_that_fails_midway_leaves_nothing_and_the_next_completes(home, monkeypatch):
    store = Store.open(home)
    run_dir = long_run(store.runs_dir)
    before = dump(store)
    applied = []
    real_apply = ingest.apply

    def failing(db, run_id, event):
        applied.append(event["seq"])
        if len(applied) == 700:  # half-way through the transaction
            raise sqlite3.OperationalError("disk I/O error")
        real_apply(db, run_id, event)
    monkeypatch.setattr(ingest, "apply", failing)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        store.ingest(run_dir)
    assert dump(store) == before  # no run row, no event, no offset: all or nothing
    monkeypatch.setattr(ingest, "apply", real_apply)
    report = store.ingest(run_dir)
    assert report.new_events == len(events(run_dir)) and not report.bad_lines
    fresh = Store(home / "other.db", runs_dir=store.runs_dir)
    fresh.ingest(run_dir)
    assert dump(store) == dump(fresh)  # as if the failure never happened


def test_4_a_full_run_log_fails_the_ingest_whole_and_recovers(home):
    store = Store.open(home)
    small = write_run(store.runs_dir, "small", run_events(MATRIX[:1], COUNTS, finish=False))
    store.ingest(small)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 8}")  # the disk fills up
    run_dir = long_run(store.runs_dir)
    before = dump(store)
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.ingest(run_dir)
    assert dump(store) == before
    with open(small / "events.jsonl", "a") as f:  # a small write still fits: the store is usable
        f.write(line(100, "heartbeat"))
    assert store.ingest(small).new_events == 1
    store.db.execute("PRAGMA max_page_count = 1073741823")  # space again
    assert store.ingest(run_dir).new_events == len(events(run_dir))
    assert store.run("r1")["status"] == "finished" and len(store.steps("r1")) == 1499 + 9


def test_4_the_cli_says_in_one_sentence_that_the_run_log_cannot_be_written(home, monkeypatch):
    store = Store.open(home)
    long_run(store.runs_dir)
    real_connect = Store._connect

    def full(self):
        db = real_connect(self)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 4}")
        return db
    monkeypatch.setattr(Store, "_connect", full)
    result = CliRunner().invoke(app, ["runs"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == f"error: The run log {home / 'runs.db'} cannot be used: database or disk is full.\n"


def test_4_a_run_whose_files_cannot_be_written_leaves_no_run_dir(home, monkeypatch):
    store = Store.open(home)

    def disk_full(run_dir, launch):
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "launch.json"))
    monkeypatch.setattr(launcher, "write_launch", disk_full)
    result = CliRunner().invoke(app, ["run", "tiny", "--detach"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "launch.json: No space left on device." in result.stderr
    assert list(store.runs_dir.iterdir()) == [] and store.runs() == []

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")
    monkeypatch.undo()
    monkeypatch.setattr(Store, "register", locked)
    result = CliRunner().invoke(app, ["run", "tiny", "--detach"])
    assert result.exit_code == 1 and "cannot be used: database is locked." in result.stderr
    assert list(store.runs_dir.iterdir()) == []


# ----------------------------------------------------------------------------------------- 5 damaged events


def test_5_a_torn_last_line_is_cut_by_the_resumed_engine_and_nothing_is_lost(home):
    store = Store.open(home)
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))
    n = len(events(run_dir))
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(line(n, "eval", after_task=1)[:25])  # the engine was killed mid-write
    assert store.ingest(run_dir).new_events == n
    assert not store.ingest(run_dir)  # the torn tail is neither an event nor (yet) a bad line
    writer = EventWriter(run_dir / "events.jsonl")  # --resume: the engine's own writer cuts the tail
    writer.emit("run_started", resumed=True, after_task=0)
    writer.emit("eval", after_task=1, task_acc=[50.0, 70.0], task_n=[10, 20], acc=63.3)
    writer.close()
    report = store.ingest(run_dir)
    assert report.new_events == 2 and not report.bad_lines
    assert [e["seq"] for e in store.events("r1")] == list(range(n + 2))
    assert store.run("r1")["matrix"][1] == [50.0, 70.0]


def test_5_lines_of_the_wrong_shape_are_reported_and_their_neighbours_kept(home):
    store = Store.open(home)
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))
    n = len(events(run_dir))
    store.ingest(run_dir)
    bad = [
        line(n, "eval", after_task="one", task_acc=[1.0]),  # parses, but no task index
        line(n + 1, "eval", after_task=1, task_acc=[1.0]),  # one accuracy for two seen tasks
        line(n + 2, "step", task=0, losses=[1, 2]),
        line(n + 3, "run_started", config={"train": 5}),
        line(n + 4, "relevance", task=0, rows=["a"], cols=["b"], values=[["x"]]),
        line(n + 5, "eval", after_task=10**9, task_acc=[0.0] * 3),  # would make a 10^9-square matrix
        '{"v": 1, "seq": 1, "ts": 1.0, "type": "heartbeat"}\n',  # seq 1 is another event
        '{"v": 1, "seq": 99999999999999999999, "type": "heartbeat"}\n',  # past SQLite's integers
        'garbled \r with a carriage return\n',  # a stray \r does not shift the numbers after it
        '{"v": 1, "seq": 50, "ts": "noon", "type": "heartbeat"}\n',
        line(n + 6, "phase", phase="data", message=["not", "text"], task=-1),
    ]
    good = line(n + 7, "eval", after_task=1, task_acc=[55.0, 65.0], task_n=[10, 20], acc=61.67)
    with open(run_dir / "events.jsonl", "a") as f:
        f.write("".join(bad) + good)
    report = store.ingest(run_dir)
    assert report.bad_lines == list(range(n + 1, n + len(bad) + 1))
    assert report.new_events == 1 and store.latest("r1", "eval")["seq"] == n + 7
    assert store.run("r1")["matrix"][1][:2] == [55.0, 65.0]
    for table in export.TABLES:  # every reader copes with what was kept
        export.table_rows(store, ["r1"], table)
    assert store.ingest(run_dir).bad_lines == []  # reported once


def test_5_newer_schema_events_are_kept_raw_and_never_shown_as_ours(home):
    store = Store.open(home)
    run_dir = write_run(store.runs_dir, "r1", run_events(MATRIX[:1], COUNTS, finish=False))
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps({"v": 2, "seq": 500, "ts": 1.0, "type": "eval", "after_task": "x"}) + "\n")
        f.write(json.dumps({"v": 2, "seq": 501, "ts": 1.0, "type": "run_finished", "last": {"new": "shape"}}) + "\n")
    report = store.ingest(run_dir)
    assert report.newer_lines == [len(events(run_dir)) - 1, len(events(run_dir))] and not report.bad_lines
    assert store.run("r1")["status"] == "running"  # a v2 run_finished is not interpreted
    state = progress.Progress.of(store.run("r1"))
    assert [state.update(e) for e in store.events("r1", after_seq=499)] == [None, None]


# ----------------------------------------------------------------------------------------- 8 bad config & data

CLASSES = 6  # the fixture folder's


@pytest.fixture(scope="module")
def folder_preset(tmp_path_factory) -> str:
    return engine_runs.fixture_preset(tmp_path_factory.mktemp("folder"))


@pytest.mark.parametrize("args, first_line", [
    (["--set", "train.epoch=3"], "error: Unknown config key 'train.epoch'; did you mean 'train.epochs'?"),
    (["--set", "trian.epochs=3"], "error: Unknown config key 'trian.epochs'; did you mean 'train.epochs'?"),
    (["--set", "train.epochs=many"], "error: Config key 'train.epochs' has value 'many', but it must be an integer."),
    (["--set", "train.epochs=-1"], "error: Config key 'train.epochs' has value -1, but it must be at least 0."),
    (["--set", "data.test_fraction=1.5"], "error: Config key 'data.test_fraction' has value 1.5, but it must be at most 0.99."),
    (["--set", "scenario.class_order=[0,0,1,2,3,4]"], "error: The class order (scenario.class_order) lists class 0 more than once."),
    (["--set", "scenario.class_order=[0,1,2]"], "error: The class order (scenario.class_order) has 3 classes, but the dataset has 6: it must list each of 0..5 once."),
    (["--set", "scenario.n_tasks=7"], "error: Config key 'scenario.n_tasks' has value 7, but there are only 6 classes."),
    (["--set", "scenario.n_tasks=4"], "error: 6 classes cannot be split into 4 equal tasks; change scenario.n_tasks or set scenario.initial_increment and scenario.increment."),
    (["--set", "scenario.classes=8"], "error: Config key 'scenario.classes' has value 8, but the dataset has 6 classes."),
    (["--set", "data.root=/no/such/folder"], "error: The image folder dataset was not found at /no/such/folder. Expected layout:"),
    (["--gpus", "0,0"], "error: --gpus lists a device twice in '0,0'."),
])
def test_8_bad_configuration_is_one_sentence_and_creates_nothing(home, folder_preset, args, first_line):
    for extra in ([], ["--detach"], ["--queue", "--detach"]):
        result = CliRunner().invoke(app, ["run", folder_preset, *args, *extra])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.stderr.splitlines()[0] == first_line
        if "Expected layout" in first_line:
            assert "  /no/such/folder/\n    train/<class>/" in result.stderr  # the layout, after the sentence
        else:
            assert result.stderr.count("\n") == 1
        assert not (home / "runs").exists() or list((home / "runs").iterdir()) == []
        assert not (home / "runs.db").exists() or Store.open(home).runs(include_archived=True) == []


@pytest.mark.parametrize("preset, overrides, first_line", [
    ("missing.yaml", [], "error: Preset file 'missing.yaml' does not exist."),
    ("tinny", [], "error: No preset named 'tinny'; did you mean 'tiny'?"),
    ("cifar100-10", ["data.root=/no/cifar"], "error: CIFAR-100 was not found at /no/cifar. Expected layout:"),
    ("imagenet-r-10", ["data.root=/no/inr"], "error: ImageNet-R was not found at /no/inr. Expected layout:"),
    ("tiny", ["scenario.class_order=[1,2,3]"], "error: The class order (scenario.class_order) has 3 classes, but the dataset has 100: it must list each of 0..99 once."),
])
def test_8_missing_presets_and_datasets_are_named(home, tmp_path, monkeypatch, preset, overrides, first_line):
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["run", preset, *[a for o in overrides for a in ("--set", o)], "--detach"])
    assert time.perf_counter() - t0 < 10  # a preflight, not a dataset read
    assert result.exit_code == 1 and result.stderr.splitlines()[0] == first_line, result.output
    assert not (home / "runs").exists() or list((home / "runs").iterdir()) == []


def test_8_the_preflight_is_torch_free_and_reads_no_image(tmp_path):
    code = f"""
import sys
from seca_tui import launcher
from PIL import Image
opened = []
Image.open = lambda *a, **k: opened.append(a)
launcher.prepare({engine_runs.fixture_preset(tmp_path)!r})
launcher.prepare("tiny")  # shapes-r: not rendered either
assert "torch" not in sys.modules and not opened, opened
"""
    env = dict(os.environ, PYTHONPATH=str(REPO), SECA_TUI_HOME=str(tmp_path / "home"))
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert not (tmp_path / "home" / "data").exists()  # shapes-r was not rendered


# ----------------------------------------------------------------------------------------- 10 properties

GOOD = [line(seq, type, **fields) for seq, (type, fields) in enumerate(run_events(MATRIX, COUNTS))]
TYPES = sorted(ingest.CHECKS) + ["novel"]
FIELDS = ["after_task", "task", "task_acc", "task_n", "acc", "rows", "cols", "values", "utility", "kept", "pruned",
          "labels", "losses", "epoch", "step", "steps_total", "lr", "ips", "config", "tasks", "env", "last", "avg",
          "forgetting", "bwt", "error", "traceback", "level", "message", "seconds", "classes", "path", "sha256", "ts"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
plausible = (st.integers(-1, 4) | st.lists(st.floats(0, 100), max_size=4) | st.lists(st.integers(0, 9), max_size=4)
             | st.lists(st.text(max_size=4), max_size=3) | st.lists(st.lists(st.floats(0, 1), max_size=3), max_size=3)
             | st.dictionaries(st.sampled_from(["train", "data", "ce", "pid"]), json_values, max_size=3))
# Event-like objects: any version, a type the ingester knows or not, fields with odd values. Their seq
# keeps clear of the engine's (a foreign line reusing an engine seq is refused, so the engine's is lost).
event_like = st.builds(
    lambda base, extra: {**extra, **base},
    st.fixed_dictionaries({"v": st.sampled_from([1, 1, 1, 2]) | st.integers(),
                           "seq": st.integers(len(GOOD) + 10, 2**64) | st.integers(-5, -1),
                           "type": st.sampled_from(TYPES) | st.text(max_size=5)}),
    st.dictionaries(st.sampled_from(FIELDS), plausible | json_values, max_size=6),
)
junk_line = (
    event_like.map(lambda e: json.dumps(e).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
    | st.text(max_size=40).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass"))
)
ops = st.lists(st.one_of(
    st.just(("good",)), st.just(("torn good",)), st.just(("ingest",)),
    st.tuples(st.just("junk"), junk_line),
), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")))
def test_10_any_bytes_appended_ingest_or_are_reported_never_raise_never_lose(steps, tail):
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "runs.db")
        run_dir = Path(tmp) / "runs" / "r1"
        run_dir.mkdir(parents=True)
        path = run_dir / "events.jsonl"
        lines: list[tuple[str, bytes]] = []  # (kind, complete line without its newline), by line number
        reports = []
        next_good = 0

        def append(data: bytes) -> None:
            with open(path, "ab") as f:
                f.write(data)

        for op in steps + [("good",)] * (len(GOOD) - sum(op[0] != "junk" and op[0] != "ingest" for op in steps)):
            if op[0] in ("good", "torn good") and next_good < len(GOOD):
                data = GOOD[next_good].encode()
                next_good += 1
                if op[0] == "torn good":  # the reader catches it half-written
                    append(data[:7])
                    reports.append(store.ingest(run_dir))
                    data = data[7:]
                append(data)
                lines.append(("good", GOOD[next_good - 1].encode().rstrip(b"\n")))
            elif op[0] == "junk":
                append(op[1] + b"\n")
                lines.append(("junk", op[1]))
            elif op[0] == "ingest":
                reports.append(store.ingest(run_dir))
        append(tail)  # a last line still being written
        reports.append(store.ingest(run_dir))
        reports.append(store.ingest(run_dir))

        bad = [n for r in reports for n in r.bad_lines]
        newer = [n for r in reports for n in r.newer_lines]
        assert len(bad) == len(set(bad)) and len(newer) == len(set(newer))  # each line reported once
        assert all(1 <= n <= len(lines) for n in bad + newer)  # never the unfinished tail
        stored = {e["seq"]: json.dumps(e) for e in store.events("r1")}
        for number, (kind, raw) in enumerate(lines, start=1):
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                parsed.setdefault("ts", None)  # as the ingester stores an event without one
            kept = isinstance(parsed, dict) and stored.get(parsed.get("seq")) == json.dumps(parsed) \
                and not isinstance(parsed.get("seq"), bool)
            if kind == "good":
                assert kept and number not in bad, (number, raw)  # good events are never lost
            else:
                assert kept != (number in bad), (number, raw)  # stored, or reported by number
            if number in newer:
                assert kept and parsed["v"] > ingest.SCHEMA_VERSION
        assert sum(r.new_events for r in reports) == len(stored)

        # whatever was kept, every reader copes
        run = store.run("r1")
        json.dumps(run_record(run))
        for table in export.TABLES:
            export.table_rows(store, ["r1"], table)
        export.all_runs(store)
        for table in ("relevance", "pool", "affinity"):
            store.per_task("r1", table)
        state = progress.Progress.of(run)
        for event in store.events("r1"):
            state.update(event)
        state.line(None)
        store.close()
