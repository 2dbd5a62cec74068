"""Run dirs for the TUI tests and the TUI benchmark, and Pilot helpers (no tests in this module).

The TUI tests run against real engine runs: :func:`engine_runs` runs ``python -m engine run tiny`` (through
tests/engine_runs.py) once per test session for each entry of :data:`TINY_RUNS`, all with one session home
so the shapes-r images are rendered once. :func:`make_run` copies one of them into a test's own home, as
the launcher and the engine leave a run dir, whole or cut after an event (the rest is returned as
``pending``, for tests that play the engine by appending it). Tests read what the panels must show from
the run dir's events (:func:`events_of`), never from numbers written here.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from seca_tui.process import HOST
from seca_tui.store import Store
from tests import engine_runs as engine

# The session's real runs: name → overrides of the `tiny` preset. Three methods, and a seed that keeps
# the runs' Avg apart (a random tiny CLIP is near chance, so Last is often the same for all of them).
TINY_RUNS = {
    "alpha": ("name=alpha",),
    "beta": ("name=beta", "method=hpeft", "train.seed=2"),
    "gamma": ("name=gamma", "method=zeroshot"),
}
_made: dict[str, Path] = {}  # filled once per process, however many test modules ask


@dataclass(frozen=True)
class EngineRuns:
    """The session's runs: ``runs[name]`` is a finished run dir; ``home`` the session home, whose
    ``data/`` holds the rendered shapes-r images (point SECA_TUI_DATA there to reuse them)."""

    home: Path
    runs: dict[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.runs[name]

    @property
    def data(self) -> Path:
        return self.home / "data"


def make_engine_runs(home: Path, specs: dict[str, tuple[str, ...]] = TINY_RUNS, timeout: float = 300) -> dict[str, Path]:
    """Run the engine on the tiny preset once per spec, all at once, under ``home/runs/<name>``; fails
    with the engine log's tail if a run does not finish."""
    procs = {name: engine.start("tiny", home / "runs" / name, *overrides, home=home) for name, overrides in specs.items()}
    out = {}
    for name, proc in procs.items():
        run_dir = home / "runs" / name
        code = proc.wait(timeout)
        evs = engine.events(run_dir)
        if code != 0 or not evs or evs[-1]["type"] != "run_finished":
            log = (run_dir / "engine.log").read_text()[-2000:] if (run_dir / "engine.log").exists() else ""
            raise RuntimeError(f"engine run {name} did not finish (exit {code}):\n{log}")
        out[name] = run_dir
    return out


@pytest.fixture(scope="session")
def engine_runs(tmp_path_factory) -> EngineRuns:
    """The session's finished tiny runs (see :data:`TINY_RUNS`); tests copy them with :func:`make_run`."""
    if not _made:
        home = tmp_path_factory.mktemp("engine-home")
        _made.update(make_engine_runs(home))
    return EngineRuns(next(iter(_made.values())).parents[1], dict(_made))


class FixtureRun(NamedTuple):
    run_dir: Path
    pending: list[dict]  # the events not written yet, for tests that play the engine


def make_run(home: Path, run_id: str, source: Path, *, name: str | None = None, created: float | None = None,
             stop_after: tuple[str, int] | None = None) -> FixtureRun:
    """Copy the engine run ``source`` to ``home/runs/run_id`` with a ``launch.json`` as the launcher writes
    it (``name`` and ``created`` set there); all its events, or those up to the first ``(type, task)``
    event of ``stop_after``, e.g. ``("eval", 0)``. Checkpoints are left out (no screen reads them). Not
    ingested: callers decide when the store sees it."""
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    for file in ("config.yaml", "engine.log"):
        shutil.copyfile(source / file, run_dir / file)
    (run_dir / "launch.json").write_text(json.dumps({
        "run_id": run_id, "name": name or source.name, "preset": "tiny", "overrides": [], "gpus": None,
        "host": HOST, "created": created if created is not None else time.time(),
    }))
    lines = (source / "events.jsonl").read_text().splitlines(keepends=True)  # the engine's own bytes
    if stop_after is None:
        (run_dir / "events.jsonl").write_text("".join(lines))
        return FixtureRun(run_dir, [])
    written, pending = split_after([json.loads(line) for line in lines], *stop_after)
    (run_dir / "events.jsonl").write_text("".join(lines[: len(written)]))
    return FixtureRun(run_dir, pending)


def split_after(events: list[dict], type_: str, task: int) -> tuple[list[dict], list[dict]]:
    """``events`` cut after the first ``type_`` event of ``task``."""
    i = 1 + next(i for i, e in enumerate(events) if (e["type"], e.get("task", e.get("after_task"))) == (type_, task))
    return events[:i], events[i:]


def events_of(run_dir: Path) -> list[dict]:
    """The events a run dir holds: tests derive what the panels must show from them."""
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
