"""Task numbers as people read them: 1…T, as in the paper (task 1, A_1 … A_T, "T1").

The engine's events, the store and the checkpoints count tasks from 0 (the events schema says so);
every view a person reads (TUI, CLI, CSV, figures) converts through this module and nowhere else.
"""
from __future__ import annotations

import re

_POOL_LABEL = re.compile(r"task (\d+)")  # the engine's pool labels, e.g. "task 3" (0-based)


def number(task: int) -> int:
    """The number people read for the 0-based task index ``task``: 0 → 1."""
    return int(task) + 1


def label(task: int) -> str:
    """The short label of the 0-based task ``task``: 0 → ``"T1"``."""
    return f"T{number(task)}"


def pool_label(text: str) -> str:
    """A pool entry's label, named as the accuracy matrix names tasks: ``"task 3"`` → ``"T4"``; any
    other text as it is."""
    match = _POOL_LABEL.fullmatch(str(text))
    return label(int(match.group(1))) if match else str(text)
