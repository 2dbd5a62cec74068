"""Published run logs → the events a run of ours writes, so imported runs sit beside ours in the run
log (``compare``, ``results``, ``plot``) with the status ``imported``.

The Continual-CLIP lineage's per-task JSON lines (SECA's authors publish theirs this way): one
object per task, ``{"task", "acc", "avg_acc", "forgetting", "acc_per_task", "bwt", "fwt"}``, tasks
0-based and in order, then a final ``{"last", "avg"}``. ``acc`` is A_t over the seen classes and
``acc_per_task`` is row t of the accuracy matrix. Their Last and Avg mean what ours mean and are kept
as published; their ``forgetting`` and ``bwt`` are defined otherwise than seca-method.md §8, so the
run log holds ours, recomputed from ``acc_per_task``, and the published ones are kept beside them.

Pure functions: text in, a :class:`Published` or a :class:`ConfigError` naming the line out.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import ConfigError
from seca_tui import metrics

TASK_KEYS = ("task", "acc", "avg_acc", "forgetting", "acc_per_task", "bwt", "fwt")
FINAL_KEYS = ("last", "avg")


@dataclass
class Published:
    """A parsed log: its per-task objects as written, and the final Last and Avg."""

    tasks: list[dict[str, Any]]
    last: float
    avg: float

    @property
    def matrix(self) -> list[list[float]]:
        return [t["acc_per_task"] for t in self.tasks]

    def ours(self) -> dict[str, float | None]:
        """Last, Avg, forgetting and BWT by seca-method.md §8, from the published matrix and A_t."""
        return metrics.summary(self.matrix, [t["acc"] for t in self.tasks])

    def theirs(self) -> dict[str, float | None]:
        """The published numbers: Last and Avg from the final line, forgetting, BWT and FWT from the
        last task's line."""
        end = self.tasks[-1]
        return {"last": self.last, "avg": self.avg, "forgetting": end["forgetting"], "bwt": end["bwt"], "fwt": end["fwt"]}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_continual_clip(text: str, source: str) -> Published:
    """Parse a Continual-CLIP-style log; any line that is not what the format says raises a
    :class:`ConfigError` naming ``source`` and the line number, as does a file that ends before its
    final ``{"last", "avg"}`` line (a run cut short, a truncated copy)."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ConfigError(f"{source} is empty; a Continual-CLIP log has one JSON object per task, then {{\"last\", \"avg\"}}.")
    tasks: list[dict] = []
    for number, line in enumerate(lines, start=1):
        where = f"{source} line {number}"
        try:
            obj = json.loads(line)
        except ValueError:
            raise ConfigError(f"{where} is not a JSON object (a truncated or damaged line?).") from None
        if not isinstance(obj, dict):
            raise ConfigError(f"{where} is not a JSON object.")
        if number == len(lines):
            if set(obj) >= set(FINAL_KEYS) and "task" not in obj:
                if not tasks:
                    raise ConfigError(f"{where} is the final line, but no task line comes before it.")
                if not all(_number(obj[k]) for k in FINAL_KEYS):
                    raise ConfigError(f"{where}: 'last' and 'avg' must be numbers.")
                return Published(tasks, float(obj["last"]), float(obj["avg"]))
            if "task" in obj:
                raise ConfigError(f"{source} ends at line {number} without its final {{\"last\", \"avg\"}} line "
                                  "(a run cut short or a truncated copy).")
        missing = [k for k in TASK_KEYS if k not in obj]
        if missing:
            raise ConfigError(f"{where} lacks '{missing[0]}'; a task line has {', '.join(TASK_KEYS)}.")
        if obj["task"] != len(tasks):
            raise ConfigError(f"{where} is task {obj['task']}, but task {len(tasks)} comes next.")
        row = obj["acc_per_task"]
        if not (isinstance(row, list) and len(row) == len(tasks) + 1 and all(_number(a) for a in row)):
            raise ConfigError(f"{where}: 'acc_per_task' must hold {len(tasks) + 1} accuracies (one per task seen).")
        bad = [k for k in ("acc", "avg_acc", "forgetting", "bwt", "fwt") if not _number(obj[k])]
        if bad:
            raise ConfigError(f"{where}: '{bad[0]}' must be a number.")
        tasks.append(obj)
    raise AssertionError("unreachable: the last line returns or raises")


def published_of(run_dir: str | Path) -> dict[str, float | None] | None:
    """The published numbers ``seca-tui import`` kept in an imported run's ``launch.json``; ``None``
    for a run of ours (or a file that cannot be read)."""
    try:
        launch = json.loads((Path(run_dir) / "launch.json").read_text())
    except (OSError, ValueError):
        return None
    imported = launch.get("imported") if isinstance(launch, dict) else None
    published = imported.get("published") if isinstance(imported, dict) else None
    return published if isinstance(published, dict) else None


def events(published: Published, config: dict, run_id: str) -> list[dict[str, Any]]:
    """The events (schema v1, without seq/ts) of a run that produced ``published``: its start with
    ``config``, one eval per task (A_t as published), and its end with the published Last and Avg and
    our forgetting and BWT."""
    ours = published.ours()
    out: list[dict[str, Any]] = [{"type": "run_started", "run_id": run_id, "config": config}]
    for t, task in enumerate(published.tasks):
        out.append({"type": "eval", "after_task": t, "task_acc": task["acc_per_task"], "acc": task["acc"]})
    out.append({"type": "run_finished", "last": published.last, "avg": published.avg,
                "forgetting": ours["forgetting"], "bwt": ours["bwt"]})
    return out
