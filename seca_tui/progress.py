"""Following a run from the terminal: a progress line (task k/T, epoch, images/s, ETA) fed by the
events the store ingests, plus a permanent line per finished task, warning or error."""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

from seca_tui import tasks
from seca_tui.ingest import SCHEMA_VERSION
from seca_tui.store import ACTIVE, Store

POLL_S = 0.5


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


@dataclass
class Progress:
    """Where a run is, as far as its events tell."""

    n_tasks: int = 0
    epochs: int = 0
    task: int = -1  # the task being learned, -1 before the first
    epoch: int = 0
    step: int = 0
    steps_total: int = 0
    ips: float | None = None
    acc: float | None = None  # the newest A_t
    phase: str | None = None  # what the engine says it is doing, until training shows for itself

    @classmethod
    def of(cls, run: dict) -> "Progress":
        return cls(n_tasks=run.get("n_tasks") or 0, epochs=_epochs(run.get("config"), 0))

    def update(self, event: dict) -> str | None:
        """Take in one event; returns a line worth keeping on screen, if the event makes one. Events of
        a newer schema are skipped: the store keeps them raw, unchecked, and their fields may differ."""
        if event.get("v", 1) > SCHEMA_VERSION:
            return None
        kind = event["type"]
        self.phase = event.get("message") if kind == "phase" else None if kind in ("step", "eval") else self.phase
        if kind == "run_started":
            self.n_tasks = len(event.get("tasks") or []) or self.n_tasks
            self.epochs = _epochs(event.get("config"), self.epochs)
        elif kind == "task_started":
            self.task, self.epoch, self.step, self.steps_total = event["task"], 0, 0, 0
        elif kind == "step":
            self.task, self.epoch = event.get("task", self.task), event.get("epoch", 0)
            self.step, self.steps_total = event.get("step", 0), event.get("steps_total") or 0
            self.ips = event.get("ips", self.ips)
        elif kind == "eval":
            self.acc = event.get("acc")
            cells = " ".join(f"{a:.1f}" for a in event.get("task_acc") or [])
            return f"after task {tasks.number(event['after_task'])}/{self.n_tasks or '?'}: A_t {_pct(self.acc)}  (per task: {cells})"
        elif kind == "log" and event.get("level") in ("warning", "error"):
            return f"{event['level']}: {event.get('message', '')}"
        elif kind == "run_failed":
            return f"failed: {event.get('error', '')}"
        elif kind == "run_stopped":
            return f"stopped after task {tasks.number(event.get('after_task', -1))}"
        return None

    def fraction(self) -> float:
        """Share of the run done, counting epochs and steps inside the current task."""
        if not self.n_tasks or self.task < 0:
            return 0.0
        within = 0.0
        if self.epochs and self.steps_total:
            within = (self.epoch + self.step / self.steps_total) / self.epochs
        return min(1.0, (self.task + within) / self.n_tasks)

    def line(self, eta: float | None) -> str:
        parts = [f"task {tasks.number(max(self.task, 0))}/{self.n_tasks or '?'}"]
        if self.phase:
            parts.append(f"{self.phase}…")
        elif self.epochs and self.steps_total:
            parts.append(f"epoch {self.epoch + 1}/{self.epochs}")
            parts.append(f"step {self.step}/{self.steps_total}")
        if self.ips is not None:
            parts.append(f"{self.ips:.0f} img/s")
        if self.acc is not None:
            parts.append(f"A_t {_pct(self.acc)}")
        parts.append(f"ETA {duration(eta)}")
        return f"{_bar(self.fraction())} " + " · ".join(parts)


def _epochs(config, default: int) -> int:
    """``train.epochs`` of a config as the store has it (a hand-edited config.yaml may hold anything)."""
    train = config.get("train") if isinstance(config, dict) else None
    epochs = train.get("epochs") if isinstance(train, dict) else None
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0 else default


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _bar(fraction: float, width: int = 20) -> str:
    filled = int(round(fraction * width))
    return "[" + "#" * filled + "." * (width - filled) + f"] {fraction * 100:3.0f}%"


class Eta:
    """Remaining time from the pace seen while following (a resumed or attached run starts mid-way)."""

    def __init__(self) -> None:
        self.start: tuple[float, float] | None = None

    def __call__(self, fraction: float, now: float) -> float | None:
        if self.start is None:
            self.start = (now, fraction)
            return None
        t0, f0 = self.start
        if fraction <= f0:
            return None
        return (now - t0) * (1.0 - fraction) / (fraction - f0)


def follow(store: Store, run_id: str, out: TextIO | None = None, poll: float | None = None,
           sleep: Callable[[float], None] = time.sleep) -> dict:
    """Show a run's progress until it is no longer queued or running; returns the final run.

    On a terminal the progress line redraws in place; otherwise only the permanent lines are
    written, so a log file gets one line per task, not one per poll.
    """
    out = out or sys.stdout  # looked up now: a test runner or a redirect may have replaced it
    poll = POLL_S if poll is None else poll
    run = store.run(run_id)
    state, eta, seq = Progress.of(run), Eta(), -1
    tty = out.isatty()
    waiting = False
    while True:
        store.ingest(run["run_dir"])
        store.mark_lost()
        if run["status"] == "queued" and (run.get("queued_at") or run.get("slurm_job")) and not waiting:
            waiting = True
            where = (f"in Slurm's queue as job {run['slurm_job']} (`seca-tui show` gives its state)" if run.get("slurm_job")
                     else "for a free device (`seca-tui runs` shows the queue)")
            out.write(("\r\033[K" if tty else "") + f"queued: waiting {where}\n")
        for event in store.events(run_id, after_seq=seq):
            seq = event["seq"]
            kept = state.update(event)
            if kept:
                out.write(("\r\033[K" if tty else "") + kept + "\n")
        run = store.run(run_id)
        if tty:  # cut to the width: a wrapped line would not be redrawn in place
            width = shutil.get_terminal_size().columns - 1
            out.write("\r\033[K" + state.line(eta(state.fraction(), time.time()))[:width])
        out.flush()
        if run["status"] not in ACTIVE:
            if tty:
                out.write("\r\033[K")
            return run
        sleep(poll)
