"""The results screen: runs grouped over trials (seca_tui/results.py), one row per group with each metric
as mean ± std and n, and the groups' A_t curves overlaid with min–max whiskers over their trials.

Opened from the runs browser (``r``) for the ticked runs, else the filtered ones. ``g`` edits the
group-by keys (empty: the keys that differ), ``o``/``O`` sort by the next metric / reverse, ``enter``
opens a group's runs, ``p`` saves the curves as a PDF figure (seca_tui/plots.py).
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from engine.config import ConfigError
from seca_tui import results, tasks
from seca_tui.messages import ResultsLoaded
from seca_tui.screens.figure import save_figure
from seca_tui.screens.store_worker import StoreScreen
from seca_tui.store import Store
from seca_tui.widgets.line_chart import LineChart
from seca_tui.widgets.runs_table import number


class ResultsScreen(StoreScreen):
    """Groups of ``run_ids``; the store thread reloads them every few seconds (some may still run)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("g", "focus_group_by", "Group by"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse", show=False),
        Binding("p", "save_figure", "Save figure"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.runs: list[dict] = []
        self.accs: dict[str, list[float | None]] = {}
        self.group_by: list[str] | None = None  # None: the keys that differ
        self.sort_metric, self.descending = "last", True
        self.groups: list[results.Group] = []
        self._posted: tuple | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="results-bar"):
            yield Label("group by ")
            yield Input(placeholder="config keys, e.g. method,seca.kd (empty: those that differ)", compact=True,
                        id="group-by")
            yield Static(id="results-sort")
        yield DataTable(id="groups", cursor_type="row", zebra_stripes=True)
        yield LineChart(title="A_t per group: mean, whiskers min–max over trials", xlabel="after task",
                        integer_x=True, id="results-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#groups", DataTable).focus()
        self._show_sort()

    # ------------------------------------------------------------------------------ store thread

    def _poll(self, store: Store) -> None:
        store.ingest_all()
        runs = [r for r in (store.run(run_id) for run_id in self.run_ids) if r is not None]
        accs = {r["run_id"]: [row["acc"] for row in store.task_rows(r["run_id"])] for r in runs}
        if (runs, accs) != self._posted:
            self._posted = (runs, accs)
            self.post_message(ResultsLoaded(runs, accs))

    # ------------------------------------------------------------------------------ UI thread

    def on_results_loaded(self, message: ResultsLoaded) -> None:
        self.runs, self.accs = message.runs, message.accs
        if self.group_by is None:
            self.query_one("#group-by", Input).placeholder = ",".join(results.differing_keys(self.runs)) or "(all one group)"
        self._regroup()

    def _regroup(self) -> None:
        try:
            groups = results.group_runs(self.runs, self.group_by)
        except ConfigError as e:
            self.notify(str(e), severity="error")
            self.group_by = None
            groups = results.group_runs(self.runs)
        self.groups = results.sort_groups(groups, self.sort_metric, self.descending)
        self._show_table()
        self._show_chart()

    def _show_table(self) -> None:
        table = self.query_one("#groups", DataTable)
        table.clear(columns=True)
        head = results.columns(self.groups, results.METRICS)
        table.add_columns(*(Text(h) for h in head))
        for i, group in enumerate(self.groups):
            keys = [Text(results.plain(v)) for k, v in group.key.items() if k != "method"]
            table.add_row(Text(group.method), *keys, Text(str(group.n), justify="right"),
                          *(Text(results.mean_std(group.stats[m]), justify="right") for m in results.METRICS),
                          Text(str(len(group.unfinished)), justify="right"), key=str(i))

    def _show_chart(self) -> None:
        series, whiskers = {}, {}
        for group in self.groups:
            if not group.finished:
                continue  # unfinished runs are never averaged in
            band = results.band([self.accs.get(r, []) for r in group.finished])
            xs = [tasks.number(t) for t in range(len(band.mean))]
            name = f"{results.group_label(group)} (n={group.n})"
            series[name] = (xs, band.mean)
            if group.n > 1:
                whiskers[name] = (band.low, band.high)
        self.query_one("#results-chart", LineChart).set_series(series, whiskers)

    def _show_sort(self) -> None:
        self.query_one("#results-sort", Static).update(
            f" sort: {results.HEADERS[self.sort_metric]} {'↓' if self.descending else '↑'}")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        keys = [k.strip() for k in event.value.split(",") if k.strip()]
        self.group_by = keys or None
        self._regroup()
        self.query_one("#groups", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        group = self.groups[int(event.row_key.value)]
        by_id = {r["run_id"]: r for r in self.runs}
        self.app.push_screen(GroupScreen(results.group_label(group), [by_id[r] for r in group.run_ids]))

    # ------------------------------------------------------------------------------ actions

    def action_back(self) -> None:
        if self.focused is self.query_one("#group-by", Input):
            self.query_one("#groups", DataTable).focus()
        else:
            self.app.pop_screen()

    def action_focus_group_by(self) -> None:
        self.query_one("#group-by", Input).focus()

    def action_cycle_sort(self) -> None:
        order = list(results.METRICS)
        self.sort_metric = order[(order.index(self.sort_metric) + 1) % len(order)]
        self._show_sort()
        self._regroup()

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self._show_sort()
        self._regroup()

    def action_save_figure(self) -> None:
        save_figure(self, "curves", [r["run_id"] for r in self.runs], self.group_by)


class GroupScreen(Screen):
    """The runs of one group, each with its metrics; enter opens one."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, title: str, runs: list[dict]) -> None:
        super().__init__()
        self.title_text, self.runs = title, runs

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title_text), id="group-title")
        yield DataTable(id="group-runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#group-runs", DataTable)
        table.add_columns("name", "status", "trial", "Last", "Avg", "Forg.", "BWT")
        for run in self.runs:
            trial = (run.get("config") or {}).get("scenario", {}).get("trial")
            table.add_row(Text(run.get("name") or run["run_id"]), Text(run.get("status") or ""),
                          Text("-" if trial is None else str(trial), justify="right"),
                          *(Text(number(run.get(k)), justify="right") for k in ("last", "avg", "forgetting", "bwt")),
                          key=run["run_id"])
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(event.row_key.value)
