"""Compare ticked runs: their A_t curves overlaid, a metrics table, and only the config keys that differ."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, TabbedContent, TabPane

from seca_tui import export, tasks
from seca_tui.messages import CompareLoaded
from seca_tui.screens.store_worker import StoreScreen
from seca_tui.store import Store
from seca_tui.widgets.line_chart import LineChart
from seca_tui.widgets.runs_table import number

MISSING = "—"
DIFF_WIDTHS = (12, 40)  # the least and the most a run's column of the config diff gets


def config_diff(configs: list[dict]) -> list[tuple[str, list[str]]]:
    """The keys whose values are not the same in every config (absent counts as different), sorted,
    each with its value per config as text."""
    flats = [export.flatten(c or {}, "") for c in configs]
    keys = sorted(set().union(*flats)) if flats else []
    rows = []
    for key in keys:
        values = [flat.get(key, MISSING) for flat in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, [str(v) for v in values]))
    return rows


class CompareScreen(StoreScreen):
    """Tabs: 1 curves and metrics, 2 config differences."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("1", "show_tab('curves')", "Curves"),
        Binding("2", "show_tab('config')", "Config diff"),
        Binding("p", "save_figure", "Save figure"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.runs: list[dict] = []
        self._posted: list[dict] | None = None

    def compose(self) -> ComposeResult:
        with TabbedContent(id="compare-tabs"):
            with TabPane("1 Curves", id="curves"):
                with Vertical():
                    yield LineChart(title="A_t", xlabel="after task", integer_x=True, id="compare-chart")
                    yield DataTable(id="metrics", cursor_type="row", zebra_stripes=True)
            with TabPane("2 Config diff", id="config"):
                yield DataTable(id="config-diff", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        metrics = self.query_one("#metrics", DataTable)
        metrics.add_columns("name", "status", "method", "dataset", "tasks", "Last", "Avg", "Forg.", "BWT")

    def _poll(self, store: Store) -> None:
        store.ingest_all()  # compared runs may still be running; the browser below is not polling
        runs = []
        for run_id in self.run_ids:
            run = store.run(run_id)
            if run is not None:
                runs.append({**run, "task_rows": store.task_rows(run_id)})
        if runs != self._posted:
            self._posted = runs
            self.post_message(CompareLoaded(runs))

    def on_compare_loaded(self, message: CompareLoaded) -> None:
        self.runs = message.runs
        names = self._names()
        series = {}
        for name, run in zip(names, self.runs):
            rows = [r for r in run["task_rows"] if r.get("acc") is not None]
            series[name] = ([tasks.number(r["task"]) for r in rows], [r["acc"] for r in rows])
        self.query_one("#compare-chart", LineChart).set_series(series)

        metrics = self.query_one("#metrics", DataTable)
        metrics.clear()
        for name, run in zip(names, self.runs):
            # Text cells: DataTable reads plain strings as markup, and names and values are the user's text
            metrics.add_row(*(Text(v) for v in (name, run.get("status") or "", run.get("variant") or run.get("method") or "",
                                                run.get("dataset") or "")),
                            Text(str(run.get("n_tasks") or ""), justify="right"),
                            *(Text(number(run.get(k)), justify="right") for k in ("last", "avg", "forgetting", "bwt")))

        diff = self.query_one("#config-diff", DataTable)
        diff.clear(columns=True)
        rows = config_diff([run.get("config") or {} for run in self.runs])
        # the values' columns share the screen and long values (paths) wrap, so every value is read whole;
        # more runs than fit scroll sideways (left/right)
        key_width = max([len(key) for key, _ in rows] + [3])
        share = (self.app.size.width - 2 - (key_width + 2)) // max(len(names), 1) - 2
        value_width = min(DIFF_WIDTHS[1], max(DIFF_WIDTHS[0], share))
        diff.add_column("key", width=key_width)
        for name in names:
            diff.add_column(Text(name), width=value_width)
        for key, values in rows:
            diff.add_row(Text(key), *map(Text, values), key=key, height=None)
        if not rows:
            diff.add_row("(the configs are identical)", *[""] * len(names))

    def _names(self) -> list[str]:
        """Run names, with the id added where two runs share a name."""
        names = [run.get("name") or run["run_id"] for run in self.runs]
        return [f"{n} ({run['run_id']})" if names.count(n) > 1 else n for n, run in zip(names, self.runs)]

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_save_figure(self) -> None:
        """The overlaid A_t curves as a PDF, a curve per run (grouped by run id: none averaged)."""
        from seca_tui.screens.figure import save_figure

        if self.query_one(TabbedContent).active != "curves":
            self.notify("The config table has no figure; press 1 for the curves.", severity="warning")
            return
        save_figure(self, "curves", [r["run_id"] for r in self.runs], group_by=["run_id"])
