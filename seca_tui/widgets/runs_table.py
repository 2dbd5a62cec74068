"""The runs browser's table: one row per run, sortable by any column, with ticks for comparing."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from seca_tui import slurm
from seca_tui.store import STATUSES
from seca_tui.widgets.run_header import STATUS_STYLE

# (header, key in the store's run dict); the first column holds the tick.
COLUMNS = [("✓", "ticked"), ("name", "name"), ("status", "status"), ("device", "device"), ("method", "variant"),
           ("dataset", "dataset"), ("tasks", "n_tasks"), ("Last", "last"), ("Avg", "avg"),
           ("Forg.", "forgetting"), ("created", "created")]
SORTABLE = [key for _, key in COLUMNS[1:]]
# Every column's width is fixed, so a cell that changes as a run goes on never resizes its column (a
# status column sized for "running" once cut "finished" short) and the layout for a width is known up
# front; the name takes what is left.
WIDTHS = {"ticked": 1, "status": max(map(len, STATUSES)), "device": 6, "variant": len("seca w/o SG-AKT"),
          "dataset": 10, "n_tasks": 5, "last": 5, "avg": 5, "forgetting": 5, "created": 11}
# On a narrow terminal these go first, in this order: the name, status, method, tasks and the three
# metrics are what a researcher scans for (80 columns keep all of them).
DROP_FIRST = ("created", "device", "dataset")
NAME_WIDTHS = (28, 12)  # the most a name gets, and the least before columns are dropped
PADDING = 2  # DataTable's cell padding, one each side
FIRST_ROWS, LATER_ROWS = 60, 300  # rows added before the first paint (a screenful), then per frame


def when(value, now: dt.datetime | None = None) -> str:
    """A run's timestamp (unix seconds or ISO text) as local ``mm-dd HH:MM`` this year, else ``YYYY-mm-dd``
    (narrow enough for 80 columns)."""
    if isinstance(value, (int, float)):
        stamp = dt.datetime.fromtimestamp(value)
    else:
        try:
            stamp = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return str(value or "")[:16]
    return stamp.strftime("%m-%d %H:%M" if stamp.year == (now or dt.datetime.now()).year else "%Y-%m-%d")


def device(run: dict) -> Text:
    """The devices a run holds ("cpu", "0,1"); for a queued run, dimmed, what it waits for: the listed
    GPUs, a count of them, or any one device. A Slurm run: its job and the job's state."""
    job = slurm.cell(run)
    if job:
        return Text(job, style="dim" if run.get("status") == "queued" else "")
    if run.get("device"):
        return Text(str(run["device"]))
    if run.get("status") != "queued":
        return Text("")
    gpus = run.get("gpus")
    if isinstance(gpus, str):
        try:
            gpus = json.loads(gpus)
        except ValueError:
            gpus = None
    if isinstance(gpus, list):
        wanted = ",".join(map(str, gpus))
    elif isinstance(gpus, int) and gpus > 1:
        wanted = f"{gpus} devices"
    else:
        wanted = "any"
    return Text(wanted, style="dim")


def number(value) -> str:
    return "" if value is None else f"{value:.1f}"


def layout(width: int) -> dict[str, int]:
    """The columns shown at a table ``width`` (key → cell width, in :data:`COLUMNS` order): every
    column while the name keeps its least width, else without :data:`DROP_FIRST` one by one; the name
    takes the room that is left, up to its most."""
    room = width - 2  # the vertical scrollbar
    shown = [key for _, key in COLUMNS]
    for drop in (None, *DROP_FIRST):
        if drop:
            shown.remove(drop)
        fixed = sum(WIDTHS[k] + PADDING for k in shown if k != "name")
        if room - fixed - PADDING >= NAME_WIDTHS[1]:
            break
    name = max(NAME_WIDTHS[1], min(NAME_WIDTHS[0], room - fixed - PADDING))
    return {k: name if k == "name" else WIDTHS[k] for k in shown}


def _sort_key(key: str):
    """Missing values sort last whichever the direction; text ignores case."""
    def get(run: dict):
        value = run.get(key)
        if value is None:
            return (1, "")
        return (0, value.lower() if isinstance(value, str) else value)
    return get


class RunsTable(DataTable):
    """Rows keyed by run id. Keeps the cursor on the same run across refreshes and re-sorts."""

    BINDINGS = [Binding("space", "toggle_tick", "Tick", tooltip="Tick the run to compare or export it"),
                Binding("home", "cursor_to(0)", "First run", show=False),
                Binding("end", "cursor_to(-1)", "Last run", show=False)]

    class TicksChanged(Message):
        """The set of ticked runs changed."""

        def __init__(self, ticked: frozenset[str]) -> None:
            super().__init__()
            self.ticked = ticked

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[dict] = []  # as shown, sorted
        self.ticked: set[str] = set()  # survives filters: compare whatever was ticked
        self.sort_key, self.sort_reverse = "created", True  # newest first
        self._generation = 0  # bumped by show(): rows still to add from an older show() are dropped
        self._restore: str | None = None  # the run to put the cursor back on once its row is added
        self._wanted: str | None = None  # a run to put the cursor on whenever its row shows up (select())
        self.widths: dict[str, int] = {}  # the columns shown now (see layout)

    def on_mount(self) -> None:
        self._lay_out()

    def on_resize(self) -> None:
        if layout(self.app.size.width) != self.widths:
            self._lay_out()
            self.show(self.runs)

    def _lay_out(self) -> None:
        """The columns for the screen's width (the table spans it)."""
        self.widths = layout(self.app.size.width)
        self.clear(columns=True)
        headers = dict((key, header) for header, key in COLUMNS)
        for key, width in self.widths.items():
            self.add_column(headers[key], key=key, width=width)

    def show(self, runs: Sequence[dict]) -> None:
        """Show these runs (the filter already applied), sorted by the current column. The caller skips
        unchanged lists: every call rebuilds the rows."""
        rows = sorted(runs, key=_sort_key(self.sort_key), reverse=self.sort_reverse)
        if self.sort_reverse:  # keep missing values last in descending order too
            rows.sort(key=lambda run: run.get(self.sort_key) is None)
        self.runs = rows
        self._restore = self.current_run_id if self._restore is None else self._restore
        self.clear()
        self._generation += 1
        self._add_rows(rows, FIRST_ROWS, self._generation)

    def _add_rows(self, pending: list[dict], count: int, generation: int) -> None:
        """Add ``count`` rows now and the rest after the next frame. DataTable measures every cell it
        adds (≈0.4 ms a row), so a thousand runs at once would hold up the first paint."""
        if generation != self._generation:
            return  # a newer show() replaced these rows
        for run in pending[:count]:
            cells = self._cells(run)
            self.add_row(*(cells[key] for key in self.widths), key=run["run_id"])
        if self._wanted is not None and self._wanted in self.rows:
            self._restore, self._wanted = self._wanted, None
        if self._restore is not None and self._restore in self.rows:
            self.move_cursor(row=self.get_row_index(self._restore), animate=False)
            self._restore = None
        if pending[count:]:
            self.call_after_refresh(self._add_rows, pending[count:], LATER_ROWS, generation)
        else:
            self._restore = None

    def _cells(self, run: dict) -> dict[str, Text]:
        """Every column's cell, by key; a long name ends in … where its column cuts it."""
        status = run.get("status") or ""
        name = run.get("name") or run["run_id"]
        if run.get("archived"):
            name = f"{name} (archived)"
        # Every cell is Text: DataTable reads plain strings as markup, and names are the user's text.
        return {
            "ticked": Text("✓" if run["run_id"] in self.ticked else " "),
            "name": Text(name, no_wrap=True, overflow="ellipsis"),
            "status": Text(status, style=STATUS_STYLE.get(status, "")),
            "device": device(run),
            "variant": Text(run.get("variant") or run.get("method") or ""),  # an ablation by its own name
            "dataset": Text(run.get("dataset") or "", no_wrap=True, overflow="ellipsis"),
            "n_tasks": Text(str(run.get("n_tasks") or ""), justify="right"),
            "last": Text(number(run.get("last")), justify="right"),
            "avg": Text(number(run.get("avg")), justify="right"),
            "forgetting": Text(number(run.get("forgetting")), justify="right"),
            "created": Text(when(run.get("created"))),
        }

    def select(self, run_id: str) -> None:
        """Put the cursor on ``run_id`` now, or when its row arrives (a run just created may reach the
        table a refresh later)."""
        if run_id in self.rows:
            self.move_cursor(row=self.get_row_index(run_id), animate=False)
        else:
            self._wanted = run_id

    @property
    def current_run_id(self) -> str | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by ``key``; choosing the current column again flips the direction."""
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else key in ("created", "last", "avg")
        self.sort_key, self.sort_reverse = key, reverse
        self.show(self.runs)

    def cycle_sort(self) -> None:
        """Sort by the next column (keyboard alternative to clicking a header)."""
        self.sort_by(SORTABLE[(SORTABLE.index(self.sort_key) + 1) % len(SORTABLE)])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value in SORTABLE:
            self.sort_by(event.column_key.value)

    def action_cursor_to(self, row: int) -> None:
        """The cursor on the first (0) or the last (-1) row; DataTable's own Home/End only scroll."""
        if self.row_count:
            self.move_cursor(row=row % self.row_count, animate=False)

    def action_toggle_tick(self) -> None:
        run_id = self.current_run_id
        if run_id is None:
            return
        self.ticked ^= {run_id}
        self.update_cell(run_id, "ticked", Text("✓" if run_id in self.ticked else " "))
        self.post_message(self.TicksChanged(frozenset(self.ticked)))
