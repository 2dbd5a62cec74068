"""The runs browser's table: one row per run, sortable by any column, with ticks for comparing."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from seca_tui import run_filter, slurm
from seca_tui.export import flat_config
from seca_tui.store import STATUSES
from seca_tui.widgets.run_header import STATUS_STYLE

# (header, key in the store's run dict); the first column holds the tick. Config columns follow, keyed
# CONFIG + the dotted key.
COLUMNS = [("✓", "ticked"), ("name", "name"), ("status", "status"), ("device", "device"), ("method", "variant"),
           ("dataset", "dataset"), ("tasks", "n_tasks"), ("Last", "last"), ("Avg", "avg"),
           ("Forg.", "forgetting"), ("created", "created")]
SORTABLE = [key for _, key in COLUMNS[1:]]
CONFIG = "config."
# Config keys the fixed columns show already, never offered as columns of their own.
SHOWN_KEYS = ("name", "method", "data.name", "scenario.n_tasks")
# Every column's width is fixed, so a cell that changes as a run goes on never resizes its column (a
# status column sized for "running" once cut "finished" short) and the layout for a width is known up
# front; the name takes what is left.
WIDTHS = {"ticked": 1, "status": max(map(len, STATUSES)), "device": 6, "variant": len("seca w/o SG-AKT"),
          "dataset": 10, "n_tasks": 5, "last": 5, "avg": 5, "forgetting": 5, "created": 11}
CONFIG_WIDTH = 14  # the most a config column takes; longer values end in …
# On a narrow terminal these go first, in this order, config columns (the last first) before the device:
# the name, status, method, tasks and the three metrics are what a researcher scans for (80 columns keep
# all of them).
NAME_WIDTHS = (28, 12)  # the most a name gets, and the least before columns are dropped
PADDING = 2  # DataTable's cell padding, one each side
# The table holds this many screens of rows around the cursor, and moves that window once the cursor
# comes within a screen of its edge (so a page down never runs past it): DataTable measures every cell
# it adds (≈0.4 ms a row, and again on the next idle), so ten thousand rows would take seconds to add,
# and every filter and sort would add them again.
WINDOW_SCREENS = 3


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


def layout(width: int, config: Sequence[tuple[str, int]] = ()) -> dict[str, int]:
    """The columns shown at a table ``width`` (key → cell width, in :data:`COLUMNS` order, then the
    ``config`` columns as (key, width)): every column while the name keeps its least width, else without
    created, the config columns (the last first), device and dataset one by one; the name takes the
    room that is left, up to its most."""
    room = width - 2  # the vertical scrollbar
    widths = {key: WIDTHS.get(key, 0) for _, key in COLUMNS} | dict(config)
    for drop in (None, "created", *reversed([key for key, _ in config]), "device", "dataset"):
        widths.pop(drop, None)
        fixed = sum(w + PADDING for k, w in widths.items() if k != "name")
        if room - fixed - PADDING >= NAME_WIDTHS[1]:
            break
    widths["name"] = max(NAME_WIDTHS[1], min(NAME_WIDTHS[0], room - fixed - PADDING))
    return widths


def value_text(value) -> str:
    """A config value as a cell shows it, as the filter reads it back (``lr=0.001``, ``milestones=1,2``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, list):
        return ",".join(map(str, value))
    if value is None:
        return "null"  # as YAML writes it, and the filter reads it
    return "" if value is run_filter.MISSING else str(value)


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key by its shortest ending that no other of ``keys`` ends with (``lr``, ``seca.kd``)."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if sum(k == tail or k.endswith("." + tail) for k in keys) == 1:
                break
        names[key] = tail
    return names


def _value(run: dict, key: str):
    if key.startswith(CONFIG):
        return flat_config(run.get("config_json")).get(key[len(CONFIG):])
    return run.get(key)


def _sort_key(key: str):
    """Missing values sort last whichever the direction (the first item); numbers before text; text
    ignores case."""
    def get(run: dict):
        value = _value(run, key)
        if value is None:
            return (1, 0, "")
        if isinstance(value, (int, float)):
            return (0, 0, value)
        return (0, 1, str(value).lower())
    return get


class RunsTable(DataTable):
    """Every run of the filter (``runs``, sorted), of which the DataTable holds a window of rows around
    the cursor (see :data:`WINDOW_SCREENS`); rows keyed by run id. The cursor, ticks, sort and filter act
    on the whole list, and the cursor stays on the same run across refreshes and re-sorts."""

    BINDINGS = [Binding("space", "toggle_tick", "Tick", tooltip="Tick the run to compare or export it"),
                Binding("home,ctrl+home", "cursor_to(0)", "First run", show=False),
                Binding("end,ctrl+end", "cursor_to(-1)", "Last run", show=False)]

    class TicksChanged(Message):
        """The set of ticked runs changed."""

        def __init__(self, ticked: frozenset[str]) -> None:
            super().__init__()
            self.ticked = ticked

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[dict] = []  # as shown, sorted
        self.start = 0  # the index in runs of the table's first row
        self._index: dict[str, int] = {}  # run id → index in runs
        self.ticked: set[str] = set()  # survives filters: compare whatever was ticked
        self.sort_key, self.sort_reverse = "created", True  # newest first
        self.differing: list[str] = []  # the config keys that tell the filtered runs apart (the default columns)
        self.chosen_keys: list[str] | None = None  # the config columns picked by the user; None: differing
        self._wanted: str | None = None  # a run to put the cursor on whenever it shows up (select())
        self.widths: dict[str, int] = {}  # the columns shown now (see layout)
        self._measured: dict[str, int] = {}  # config key → its longest value among the runs (see _lay_out)

    @property
    def window(self) -> int:
        """How many rows the table holds at most."""
        return WINDOW_SCREENS * self.app.size.height

    def on_mount(self) -> None:
        self._lay_out()

    def on_resize(self) -> None:
        self.show(self.runs)  # the columns that fit, and a window for the height

    @property
    def config_keys(self) -> list[str]:
        """The config columns wanted (the width may leave some out)."""
        return self.differing if self.chosen_keys is None else self.chosen_keys

    def _lay_out(self, measure: bool = True) -> None:
        """The columns for the screen's width (the table spans it) and the config keys wanted; each
        config column as wide as its header or its longest value among the runs shown, up to a most
        (``measure``: the runs changed, not only their order, so the widths are measured again)."""
        keys = [k for k in self.config_keys if k not in SHOWN_KEYS]
        headers = dict((key, header) for header, key in COLUMNS)
        names = short_names(keys)
        if measure or set(keys) != set(self._measured):
            flats = [flat_config(r.get("config_json")) for r in self.runs]
            self._measured = {key: max((len(value_text(f.get(key, run_filter.MISSING))) for f in flats), default=0)
                              for key in keys}
        config = [(CONFIG + key, min(CONFIG_WIDTH, max(self._measured[key], len(name)))) for key, name in names.items()]
        headers.update((CONFIG + key, name) for key, name in names.items())
        widths = layout(self.app.size.width, config)
        if widths != self.widths:
            self.widths = widths
            self.clear(columns=True)
            for key, width in widths.items():
                self.add_column(Text(headers[key], no_wrap=True, overflow="ellipsis"), key=key, width=width)

    def show(self, runs: Sequence[dict], differing: list[str] | None = None) -> None:
        """Show these runs (the filter already applied), sorted by the current column; ``differing``: the
        config keys whose values differ among them, when they were worked out anew. The caller skips
        unchanged lists: every call rebuilds the rows held."""
        get = _sort_key(self.sort_key)
        rows = sorted(runs, key=get, reverse=self.sort_reverse)
        if self.sort_reverse:  # keep missing values last in descending order too
            rows.sort(key=lambda run: get(run)[0])
        current, at, measure = self.current_run_id, self.cursor_index, runs is not self.runs
        self.runs = rows
        self._index = {run["run_id"]: i for i, run in enumerate(rows)}
        if differing is not None:
            self.differing = differing
        self._lay_out(measure)
        if self._wanted in self._index:
            current, self._wanted = self._wanted, None
        self._hold(self._index.get(current, min(at, len(rows) - 1)))

    def _hold(self, index: int) -> None:
        """Hold the window of rows around ``index`` (of ``runs``) and put the cursor there, on the same
        line of the screen as before."""
        on_screen = self.cursor_row - self.scroll_y
        self.start = max(0, min(index - self.window // 2, len(self.runs) - self.window))
        self.clear()
        for run in self.runs[self.start:self.start + self.window]:
            cells = self._cells(run)
            self.add_row(*(cells[key] for key in self.widths), key=run["run_id"])
        if self.runs:
            row = max(index, 0) - self.start
            self.move_cursor(row=row, animate=False)
            self.call_after_refresh(self.scroll_to, y=max(0, row - on_screen), animate=False)

    def on_data_table_row_highlighted(self) -> None:
        """Within a screen of an edge of the rows held, with more runs beyond it: hold the rows around the
        cursor instead (the message goes on to the screen)."""
        margin, row = self.app.size.height, self.cursor_row
        if (row < margin and self.start > 0) or (
                row >= self.row_count - margin and self.start + self.row_count < len(self.runs)):
            self._hold(self.start + row)

    def _cells(self, run: dict) -> dict[str, Text]:
        """Every column's cell, by key; a long name ends in … where its column cuts it."""
        status = run.get("status") or ""
        name = run.get("name") or run["run_id"]
        if run.get("archived"):
            name = f"{name} (archived)"
        flat = flat_config(run.get("config_json"))
        # Every cell is Text: DataTable reads plain strings as markup, and names and values are the user's text.
        cells = {
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
        for key in self.widths:
            if key.startswith(CONFIG):
                value = flat.get(key[len(CONFIG):], run_filter.MISSING)
                cells[key] = Text(value_text(value), no_wrap=True, overflow="ellipsis",
                                  justify="right" if isinstance(value, (int, float)) else "left")
        return cells

    def select(self, run_id: str) -> None:
        """Put the cursor on ``run_id`` now, or when it arrives (a run just created may reach the table a
        refresh later)."""
        if run_id in self._index:
            self._hold(self._index[run_id])
        else:
            self._wanted = run_id

    @property
    def cursor_index(self) -> int:
        """The index in ``runs`` of the run under the cursor."""
        return self.start + self.cursor_row

    @property
    def current_run_id(self) -> str | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    @property
    def current_run(self) -> dict | None:
        return self.runs[self.cursor_index] if self.row_count else None

    def run(self, run_id: str) -> dict | None:
        """One of the runs shown, by id."""
        index = self._index.get(run_id)
        return None if index is None else self.runs[index]

    @property
    def sort_label(self) -> str:
        """The sort column as its header reads, a config column by its whole key."""
        return dict((key, name) for name, key in COLUMNS).get(self.sort_key) or self.sort_key.removeprefix(CONFIG)

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by ``key``; choosing the current column again flips the direction."""
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else key in ("created", "last", "avg")
        self.sort_key, self.sort_reverse = key, reverse
        self.show(self.runs)

    def cycle_sort(self) -> None:
        """Sort by the next column (keyboard alternative to clicking a header)."""
        order = SORTABLE + [key for key in self.widths if key.startswith(CONFIG)]
        self.sort_by(order[(order.index(self.sort_key) + 1) % len(order)] if self.sort_key in order else order[0])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value != "ticked":
            self.sort_by(event.column_key.value)

    def action_cursor_to(self, index: int) -> None:
        """The cursor on the first (0) or the last (-1) run; DataTable's own Home/End only scroll."""
        if self.runs:
            self._hold(index % len(self.runs))

    def action_toggle_tick(self) -> None:
        run_id = self.current_run_id
        if run_id is None:
            return
        self.ticked ^= {run_id}
        self.update_cell(run_id, "ticked", Text("✓" if run_id in self.ticked else " "))
        self.post_message(self.TicksChanged(frozenset(self.ticked)))
