"""What the live screen shows, folded from a run's events as they arrive (no Textual, no I/O).

The worker hands new events over in seq order; :meth:`LiveModel.apply` keeps the streaming parts
(progress, throughput, loss series, the newest relevance/affinity/pool) and remembers which panels
changed, so the screen only touches those. Metrics derived from the accuracy matrix come from the
store (one definition of forgetting for CLI, CSV and TUI), not from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

STATUS_BY_EVENT = {"run_started": "running", "run_finished": "finished", "run_failed": "failed",
                   "run_stopped": "stopped"}


@dataclass
class LiveModel:
    """The live view of one run; every field is ready to display."""

    status: str = "queued"
    n_tasks: int = 0
    epochs: int = 0
    class_names: list[str] = field(default_factory=list)
    task: int | None = None  # the task being trained (0-based)
    epoch: int | None = None  # 0-based
    step: int = 0  # steps done in the current task (the engine counts across epochs)
    steps_total: int = 0
    ips: float | None = None
    gpu_mem: float | None = None  # bytes, when the engine reports it
    task_started_ts: float | None = None
    last_step_ts: float | None = None
    first_step: tuple[float, float] | None = None  # (ts, share of the task done) of its first step event
    task_seconds: list[float] = field(default_factory=list)  # from task_finished
    acc: dict[int, float] = field(default_factory=dict)  # A_t by task, from eval events
    loss_x: list[float] = field(default_factory=list)  # progress in tasks (2.5 = half-way through task 2)
    losses: dict[str, list[float | None]] = field(default_factory=dict)  # aligned with loss_x
    relevance: dict | None = None
    affinity: dict | None = None
    pool: dict | None = None
    # every task's, by task, so the screen can step back through them ([ and ])
    history: dict[str, dict[int, dict]] = field(default_factory=lambda: {"relevance": {}, "affinity": {}, "pool": {}})
    error: str | None = None
    phase: str | None = None  # what the engine is doing (a phase event's message) until it trains or moves on
    last_seq: int = -1
    changed: set[str] = field(default_factory=set)  # panels to redraw: header, acc, losses, relevance, affinity

    def apply(self, events: list[dict]) -> None:
        """Fold new events (seq order; ones already seen are ignored)."""
        for ev in events:
            if ev.get("seq", -1) <= self.last_seq:
                continue
            self.last_seq = ev["seq"]
            handler = getattr(self, "_on_" + str(ev.get("type")), None)
            if handler is not None:
                handler(ev)
            if ev.get("type") in STATUS_BY_EVENT:
                self.status = STATUS_BY_EVENT[ev["type"]]
                self.phase = self.phase if self.status == "running" else None
                self.changed.add("header")

    def take_changes(self) -> set[str]:
        """The panels changed since the last call."""
        changed, self.changed = self.changed, set()
        return changed

    # ---------------------------------------------------------------------------------- handlers

    def _on_run_started(self, ev: dict) -> None:
        config = ev.get("config") or {}
        self.epochs = int((config.get("train") or {}).get("epochs") or 0)
        self.n_tasks = len(ev.get("tasks") or []) or self.n_tasks
        self.class_names = list(ev.get("class_names") or [])

    def _on_task_started(self, ev: dict) -> None:
        self.task, self.epoch, self.step, self.steps_total = ev["task"], 0, 0, 0
        self.task_started_ts = ev.get("ts")
        self.first_step = None
        self.status = "running"  # a resumed run announces itself with its next task
        self.changed.add("header")

    def _on_phase(self, ev: dict) -> None:
        self.phase = ev.get("message")
        self.changed.add("header")

    def _on_step(self, ev: dict) -> None:
        self.phase = None
        self.task, self.epoch = ev.get("task", self.task), ev.get("epoch", self.epoch)
        self.step, self.steps_total = ev.get("step") or 0, ev.get("steps_total") or 0
        self.ips = ev.get("ips", self.ips)
        self.gpu_mem = ev.get("gpu_mem", self.gpu_mem)
        self.last_step_ts = ev.get("ts")
        x = (self.task or 0) + (self.step / self.steps_total if self.steps_total else 0.0)
        if self.first_step is None and self.last_step_ts is not None:
            self.first_step = (self.last_step_ts, x - (self.task or 0))
        losses = ev.get("losses") or {}
        for name in losses.keys() - self.losses.keys():  # a loss that starts later is padded before
            self.losses[name] = [None] * len(self.loss_x)
        for name, series in self.losses.items():
            series.append(losses.get(name))
        self.loss_x.append(x)
        self.changed |= {"header", "losses"}

    def _on_eval(self, ev: dict) -> None:
        self.acc[ev["after_task"]] = ev.get("acc")
        self.phase = None
        self.changed |= {"acc", "header"}

    def _on_task_finished(self, ev: dict) -> None:
        self.task_seconds.append(ev.get("seconds") or 0.0)
        self.phase = None
        self.changed.add("header")

    def _on_relevance(self, ev: dict) -> None:
        self.relevance = self.history["relevance"][ev["task"]] = ev
        self.changed.add("relevance")

    def _on_pool(self, ev: dict) -> None:
        self.pool = self.history["pool"][ev["task"]] = ev
        self.changed.add("relevance")

    def _on_affinity(self, ev: dict) -> None:
        self.affinity = self.history["affinity"][ev["task"]] = ev
        self.changed.add("affinity")

    def at(self, kind: str, task: int | None) -> dict | None:
        """The ``kind`` event (relevance, affinity, pool) of ``task``; the newest for None."""
        return getattr(self, kind) if task is None else self.history[kind].get(task)

    def step_from(self, kind: str, task: int | None, by: int) -> int | None:
        """The task ``by`` steps from ``task`` (None: the newest) among those with a ``kind`` event;
        None again when stepping onto the newest, so the view follows new tasks as they come."""
        tasks = sorted(self.history[kind])
        if not tasks:
            return None
        i = tasks.index(task) if task in tasks else len(tasks) - 1
        i = min(max(i + by, 0), len(tasks) - 1)
        return None if i == len(tasks) - 1 else tasks[i]

    def _on_run_failed(self, ev: dict) -> None:
        self.error = ev.get("error")

    # ---------------------------------------------------------------------------------- derived

    def eta(self) -> float | None:
        """Seconds left: the rest of this task at its measured pace, plus the mean task time per task
        still to come. None when not running, and until the pace is measured: a finished task, or two
        step events of this one (from the first, so the task's set-up, decoding images and caching the
        pool's features, does not pass for its pace)."""
        if self.status != "running" or self.task is None or not self.n_tasks:
            return None
        done = self.step / self.steps_total if self.steps_total else 0.0
        task_time = None
        if self.task_seconds:
            task_time = sum(self.task_seconds) / len(self.task_seconds)
        elif self.first_step is not None and done > self.first_step[1] and self.last_step_ts is not None:
            task_time = (self.last_step_ts - self.first_step[0]) / (done - self.first_step[1])
        if task_time is None:
            return None
        return task_time * ((1.0 - done) + (self.n_tasks - self.task - 1))

    def loss_series(self) -> dict[str, tuple[list[float], list[float]]]:
        """``{loss name: (xs, ys)}`` without the gaps, ready to plot."""
        out = {}
        for name, ys in self.losses.items():
            pairs = [(x, y) for x, y in zip(self.loss_x, ys) if y is not None]
            out[name] = ([x for x, _ in pairs], [y for _, y in pairs])
        return out
