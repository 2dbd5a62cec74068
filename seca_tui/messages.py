"""Messages from the store threads to the screens: results of blocking work, delivered on the UI thread."""
from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message


@dataclass
class StoreFailed(Message):
    """A store job or poll failed; ``text`` says why in one line."""

    text: str


@dataclass
class RunsLoaded(Message):
    """The runs of the browser's status and archived choice, newest first (its filter field's text is
    applied on the UI thread); whether these are only the newest runs (the first paint's), the rest still
    to come."""

    runs: list[dict]
    partial: bool = False


@dataclass
class RunUpdate(Message):
    """What changed in one run since the last update.

    ``events`` are new events in seq order; ``run`` (the store's run dict with ``matrix``) and
    ``task_rows`` are a fresh snapshot when anything changed, else None; ``log`` holds new engine log lines.
    """

    events: list[dict]
    run: dict | None
    task_rows: list[dict] | None
    log: list[str] = field(default_factory=list)


@dataclass
class CompareLoaded(Message):
    """The compared runs, each with ``config``, ``matrix`` and ``task_rows``."""

    runs: list[dict]


@dataclass
class ResultsLoaded(Message):
    """The runs of the results screen (as Store.run gives them) and each run's A_t by task."""

    runs: list[dict]
    accs: dict[str, list[float | None]]
