"""Run dirs for the TUI tests and the TUI benchmark, and Pilot helpers (no tests in this module).

:func:`make_run` writes a realistic 3-task run (schema v1, as engine/train.py writes it) by hand, so the
TUI tests need no engine; it is the one place to switch to real engine runs (`python -m engine run`,
preset `tiny`, then cut events.jsonl after ``stop_after`` and return the rest as ``pending``). Tests
read what the panels must show from the run dir's events (:func:`events_of`), so they hold for either.
The hand-written accuracy matrix is a_{t,i} = 90 − 5(t − i) − i + offset: runs with lower offsets rank lower.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from engine import config as engine_config
from seca_tui import metrics
from seca_tui.process import HOST
from seca_tui.store import Store

N_TASKS, CLASSES_PER_TASK, EPOCHS, STEPS_PER_EPOCH = 3, 2, 2, 2
CLASS_NAMES = ["red circle", "blue square", "green star", "pink heart", "cyan cross", "gray moon"]


def accuracy(t: int, i: int, offset: float = 0.0) -> float:
    """a_{t,i} of the fixture runs."""
    return 90.0 - 5.0 * (t - i) - i + offset


def run_events(run_id: str, cfg: engine_config.Config, offset: float = 0.0, t0: float = 1_700_000_000.0) -> list[dict]:
    """The full event stream of a finished 3-task run, in the order the engine writes it."""
    tasks = [list(range(t * CLASSES_PER_TASK, (t + 1) * CLASSES_PER_TASK)) for t in range(N_TASKS)]
    test_n = [10] * N_TASKS
    out: list[dict] = []

    def emit(type_: str, **fields) -> None:
        out.append({"v": 1, "seq": len(out), "ts": t0 + len(out), "type": type_, **fields})

    emit("run_started", run_id=run_id, config=engine_config.to_dict(cfg),
         env={"python": "3.11", "torch": "2.4", "open_clip": "2.26", "device": "cpu", "host": HOST, "git": None},
         dataset={"name": cfg.data.name, "classes": len(CLASS_NAMES), "train": 60, "test": 30, "files": {}},
         class_names=CLASS_NAMES, tasks=tasks)
    matrix, accs = [], []
    for t in range(N_TASKS):
        emit("task_started", task=t, classes=tasks[t])
        steps_total = EPOCHS * STEPS_PER_EPOCH
        for step in range(1, steps_total + 1):
            ce = round(2.0 / (t + step), 6)
            kd = round(0.5 / step, 6) if t else 0.0
            emit("step", task=t, epoch=(step - 1) // STEPS_PER_EPOCH, step=step, steps_total=steps_total,
                 losses={"ce": ce, "kd": kd, "total": round(ce + kd, 6)}, lr=1e-3, ips=120.0 + t)
        if t:
            pool = [f"task {p}" for p in range(t)]
            emit("relevance", task=t, rows=[CLASS_NAMES[c] for c in tasks[t]], cols=pool,
                 values=[[round(0.1 * (r + 1) + 0.2 * p, 2) for p in range(t)] for r in range(CLASSES_PER_TASK)],
                 utility=[round(0.5 + 0.1 * p, 2) for p in range(t)])
            emit("pool", task=t, kept=pool, pruned=None)
        seen = CLASS_NAMES[: (t + 1) * CLASSES_PER_TASK]
        emit("affinity", task=t, labels=seen,
             values=[[1.0 if a == b else round(0.1 * abs(a - b), 2) for b in range(len(seen))] for a in range(len(seen))])
        row = [accuracy(t, i, offset) for i in range(t + 1)]
        matrix.append(row)
        accs.append(metrics.incremental_accuracy(row, test_n))
        emit("eval", after_task=t, task_acc=row, task_n=test_n[: t + 1], acc=accs[-1])
        emit("checkpoint", task=t, path=f"checkpoints/task-{t}.pt", sha256="0" * 64)
        emit("task_finished", task=t, seconds=30.0)
    emit("run_finished", **metrics.summary(matrix, accs))
    return out


class FixtureRun(NamedTuple):
    run_dir: Path
    pending: list[dict]  # the events not written yet, for tests that play the engine


def make_run(home: Path, run_id: str, *, name: str | None = None, method: str = "seca", offset: float = 0.0,
             stop_after: tuple[str, int] | None = None, created: float | None = None,
             overrides: tuple[str, ...] = ()) -> FixtureRun:
    """A run dir under ``home/runs`` as the launcher and the engine leave it; all events, or those up to
    the first ``(type, task)`` event of ``stop_after``, e.g. ``("eval", 0)``. Not ingested: callers decide
    when the store sees it."""
    cfg = engine_config.from_flat({"name": name or run_id, "method": method, "scenario.n_tasks": N_TASKS,
                                   "train.epochs": EPOCHS, **dict(engine_config.parse_override(o) for o in overrides)})
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(engine_config.dump(cfg))
    (run_dir / "launch.json").write_text(json.dumps({
        "run_id": run_id, "name": cfg.name, "preset": "tiny", "overrides": list(overrides), "gpus": None,
        "host": HOST, "created": created if created is not None else time.time(),
    }))
    events = run_events(run_id, cfg, offset)
    written, pending = (events, []) if stop_after is None else split_after(events, *stop_after)
    append_events(run_dir, written)
    (run_dir / "engine.log").write_text("".join(f"engine line {i}\n" for i in range(3)))
    return FixtureRun(run_dir, pending)


def split_after(events: list[dict], type_: str, task: int) -> tuple[list[dict], list[dict]]:
    """``events`` cut after the first ``type_`` event of ``task``."""
    i = 1 + next(i for i, e in enumerate(events) if (e["type"], e.get("task", e.get("after_task"))) == (type_, task))
    return events[:i], events[i:]


def events_of(run_dir: Path) -> list[dict]:
    """The events a run dir holds: tests derive what the panels must show from them, so they hold for
    hand-written and real engine runs alike."""
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def last_of(events: list[dict], type_: str) -> dict:
    return [e for e in events if e["type"] == type_][-1]


def append_events(run_dir: Path, events: list[dict]) -> None:
    with open(run_dir / "events.jsonl", "a") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)


def ingest(home: Path) -> Store:
    store = Store.open(home)
    store.ingest_all()
    return store


def fake_engine(run_dir: Path) -> subprocess.Popen:
    """A live process whose command line names the run dir, so the store counts the run as running."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(run_dir)])
    launch = json.loads((run_dir / "launch.json").read_text())
    launch.update(pid=proc.pid, host=HOST)
    (run_dir / "launch.json").write_text(json.dumps(launch))
    return proc


async def wait_for(pilot, condition, timeout: float = 5.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def run_app(scenario) -> None:
    """Run an ``async def scenario()`` to completion (pytest-asyncio is not a dependency)."""
    asyncio.run(scenario())
