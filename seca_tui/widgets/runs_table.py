"""The runs browser's table: one row per run, sortable by any column, with ticks for comparing."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

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
PADDING = 2  # a cell's padding, one space each side


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


def fit(cell: Text, width: int) -> Text:
    """``cell`` cut to ``width`` (ending in … when it was longer) and padded to it, on the side its
    ``justify`` says."""
    cell.truncate(width, overflow="ellipsis")
    room = width - cell.cell_len
    if room > 0:
        cell.pad_left(room) if cell.justify == "right" else cell.pad_right(room)
    return cell


class RunsTable(ScrollView, can_focus=True):
    """Every run of the filter (``runs``, sorted), drawn a line at a time: only the lines on screen are
    ever built, so ten thousand runs cost a sort, never ten thousand rows (a DataTable measured every
    cell it held, which made each filter and sort take a third of a second). The first line is the
    header. The cursor, ticks, sort and filter act on the whole list, and the cursor stays on the same
    run across refreshes and re-sorts."""

    COMPONENT_CLASSES = {"runs-table--header", "runs-table--even-row", "runs-table--cursor"}
    BINDINGS = [Binding("space", "toggle_tick", "Tick", tooltip="Tick the run to compare or export it"),
                Binding("enter", "open", "Open", show=False),
                Binding("up", "move(-1)", "Up", show=False),
                Binding("down", "move(1)", "Down", show=False),
                Binding("pageup", "page(-1)", "Page up", show=False),
                Binding("pagedown", "page(1)", "Page down", show=False),
                Binding("home,ctrl+home", "cursor_to(0)", "First run", show=False),
                Binding("end,ctrl+end", "cursor_to(-1)", "Last run", show=False)]

    class TicksChanged(Message):
        """The set of ticked runs changed."""

        def __init__(self, ticked: frozenset[str]) -> None:
            super().__init__()
            self.ticked = ticked

    class Highlighted(Message):
        """The cursor is on another run (or on none: ``run_id`` None)."""

        def __init__(self, run_id: str | None) -> None:
            super().__init__()
            self.run_id = run_id

    class Opened(Message):
        """Enter, or a click on the run under the cursor: open it."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs: list[dict] = []  # as shown, sorted
        self.cursor_index = 0  # the index in runs of the run under the cursor
        self._index: dict[str, int] = {}  # run id → index in runs
        self.ticked: set[str] = set()  # survives filters: compare whatever was ticked
        self.sort_key, self.sort_reverse = "created", True  # newest first
        self.differing: list[str] = []  # the config keys that tell the filtered runs apart (the default columns)
        self.chosen_keys: list[str] | None = None  # the config columns picked by the user; None: differing
        self._wanted: str | None = None  # a run to put the cursor on whenever it shows up (select())
        self.widths: dict[str, int] = {}  # the columns shown now (see layout)
        self.headers: dict[str, str] = {}  # the columns shown now, by key: their header
        self._measured: dict[str, int] = {}  # config key → its longest value among the runs (see _lay_out)
        self._highlighted: str | None = None  # the run the last Highlighted message was about

    def on_mount(self) -> None:
        self._lay_out()

    def on_resize(self) -> None:
        self._lay_out(measure=False)  # the columns that fit the width
        self._place(self.cursor_index, self.cursor_index - round(self.scroll_y))

    @property
    def config_keys(self) -> list[str]:
        """The config columns wanted (the width may leave some out)."""
        return self.differing if self.chosen_keys is None else self.chosen_keys

    @property
    def row_count(self) -> int:
        """How many runs are listed (read as DataTable's is, with :meth:`get_row_at`)."""
        return len(self.runs)

    @property
    def page(self) -> int:
        """How many runs fit on screen under the header."""
        return max(1, self.scrollable_content_region.height - 1)

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
        self.widths = layout(self.app.size.width, config)
        self.headers = {key: headers[key] for key in self.widths}
        self.virtual_size = Size(sum(w + PADDING for w in self.widths.values()), len(self.runs) + 1)
        self.refresh()

    def show(self, runs: Sequence[dict], differing: list[str] | None = None) -> None:
        """Show these runs (the filter already applied), sorted by the current column; ``differing``: the
        config keys whose values differ among them, when they were worked out anew."""
        get = _sort_key(self.sort_key)
        rows = sorted(runs, key=get, reverse=self.sort_reverse)
        if self.sort_reverse:  # keep missing values last in descending order too
            rows.sort(key=lambda run: get(run)[0])
        current, at, measure = self.current_run_id, self.cursor_index, runs is not self.runs
        on_screen = at - round(self.scroll_y)
        self.runs = rows
        self._index = {run["run_id"]: i for i, run in enumerate(rows)}
        if differing is not None:
            self.differing = differing
        self._lay_out(measure)
        if self._wanted in self._index:
            current, self._wanted = self._wanted, None
        self._place(self._index.get(current, min(at, len(rows) - 1)), on_screen)

    def _place(self, index: int, on_screen: int | None = None) -> None:
        """The cursor on ``runs[index]``, scrolled into view: on line ``on_screen`` of the rows shown when
        given (where it was before a refresh), else as little as it takes."""
        self.cursor_index = index = max(0, min(index, len(self.runs) - 1))
        top = round(self.scroll_y)
        if on_screen is not None:
            top = index - max(0, min(on_screen, self.page - 1))
        top = max(min(top, index), index - self.page + 1)
        self.scroll_to(y=top, animate=False, immediate=True)  # kept within the runs by scroll_to
        self.refresh()
        if self.current_run_id != self._highlighted:
            self._highlighted = self.current_run_id
            self.post_message(self.Highlighted(self._highlighted))

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the widget: the header, else the run that scrolling puts there."""
        width = self.scrollable_content_region.width
        if y == 0:
            style = self.get_component_styles("runs-table--header").rich_style
            return self._line([Text(self.headers[key]) for key in self.widths], style, width)
        index = round(self.scroll_y) + y - 1
        if index >= len(self.runs):
            return Strip.blank(width, self.rich_style)
        style = self.rich_style
        if index == self.cursor_index:
            style += self.get_component_styles("runs-table--cursor").rich_style
        elif index % 2 == 0:
            style += self.get_component_styles("runs-table--even-row").rich_style
        return self._line(self.get_row_at(index), style, width)

    def _line(self, cells: list[Text], style: Style, width: int) -> Strip:
        line = Text(style=style, no_wrap=True, end="")
        for cell, cell_width in zip(cells, self.widths.values()):
            line.append(" ")
            line.append_text(fit(cell, cell_width))
            line.append(" ")
        return Strip(line.render(self.app.console)).crop_extend(0, width, style)

    def _cells(self, run: dict) -> dict[str, Text]:
        """Every column's cell, by key."""
        status = run.get("status") or ""
        name = run.get("name") or run["run_id"]
        if run.get("archived"):
            name = f"{name} (archived)"
        flat = flat_config(run.get("config_json"))
        # Text, never markup: names and values are the user's text.
        cells = {
            "ticked": Text("✓" if run["run_id"] in self.ticked else " "),
            "name": Text(name),
            "status": Text(status, style=STATUS_STYLE.get(status, "")),
            "device": device(run),
            "variant": Text(run.get("variant") or run.get("method") or ""),  # an ablation by its own name
            "dataset": Text(run.get("dataset") or ""),
            "n_tasks": Text(str(run.get("n_tasks") or ""), justify="right"),
            "last": Text(number(run.get("last")), justify="right"),
            "avg": Text(number(run.get("avg")), justify="right"),
            "forgetting": Text(number(run.get("forgetting")), justify="right"),
            "created": Text(when(run.get("created"))),
        }
        for key in self.widths:
            if key.startswith(CONFIG):
                value = flat.get(key[len(CONFIG):], run_filter.MISSING)
                cells[key] = Text(value_text(value), justify="right" if isinstance(value, (int, float)) else "left")
        return cells

    def get_row_at(self, index: int) -> list[Text]:
        """The cells of ``runs[index]`` in the columns shown, before they are cut to width."""
        cells = self._cells(self.runs[index])
        return [cells[key] for key in self.widths]

    def select(self, run_id: str) -> None:
        """Put the cursor on ``run_id`` now, or when it arrives (a run just created may reach the table a
        refresh later)."""
        if run_id in self._index:
            self._place(self._index[run_id])
        else:
            self._wanted = run_id

    @property
    def current_run_id(self) -> str | None:
        """The run under the cursor."""
        return self.runs[self.cursor_index]["run_id"] if self.runs else None

    @property
    def current_run(self) -> dict | None:
        return self.runs[self.cursor_index] if self.runs else None

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

    def on_click(self, event: events.Click) -> None:
        """A header sorts by its column; a run gets the cursor, and opens when it had it already."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = 0
            for key, width in self.widths.items():
                x += width + PADDING
                if offset.x < x:
                    if key != "ticked":
                        self.sort_by(key)
                    return
            return
        index = round(self.scroll_y) + offset.y - 1
        if index < len(self.runs):
            if index == self.cursor_index:
                self.action_open()
            else:
                self._place(index)

    def on_focus(self) -> None:
        self.refresh()  # the cursor's colours follow the focus

    def on_blur(self) -> None:
        self.refresh()

    def action_move(self, by: int) -> None:
        self._place(self.cursor_index + by)

    def action_page(self, by: int) -> None:
        self._place(self.cursor_index + by * self.page)

    def action_cursor_to(self, index: int) -> None:
        """The cursor on the first (0) or the last (-1) run."""
        if self.runs:
            self._place(index % len(self.runs))

    def action_open(self) -> None:
        if self.runs:
            self.post_message(self.Opened(self.current_run_id))

    def action_toggle_tick(self) -> None:
        run_id = self.current_run_id
        if run_id is None:
            return
        self.ticked ^= {run_id}
        self.refresh()
        self.post_message(self.TicksChanged(frozenset(self.ticked)))
