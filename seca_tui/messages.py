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
    """The runs matching the browser's filter, newest first; the config keys whose values differ among
    them (None: not worked out this time); why the filter keeps no run, when it names a config key wrongly;
    whether these are only the newest runs (the first paint's), the rest still to come."""

    runs: list[dict]
    differing: list[str] | None = None
    problem: str | None = None
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
