"""The live run screen: a header line and tabbed panels that fill in as the engine writes events.

A store thread ingests the run dir a few times a second, reads the events after the last seq and the
new engine log lines, and posts one :class:`RunUpdate`; the screen folds it into a :class:`LiveModel`
and redraws only the panels whose data changed. Charts throttle themselves (see widgets.line_chart).
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, VerticalScroll
from textual.widgets import Footer, Log, Static, TabbedContent, TabPane

from seca_tui import launcher, metrics, queue, slurm, tasks
from seca_tui.messages import RunUpdate
from seca_tui.screens.confirm import ConfirmScreen
from seca_tui.screens.live_model import LiveModel
from seca_tui.screens.store_worker import StoreScreen
from seca_tui.store import ACTIVE, Store
from seca_tui.widgets.bar_list import BarList
from seca_tui.widgets.gpu_panel import GpuPanel
from seca_tui.widgets.heatmap import Heatmap
from seca_tui.widgets.line_chart import LineChart
from seca_tui.widgets.run_header import RunHeader

SNAPSHOT_SECONDS = 2.0  # re-read the run's status even without events (it may turn `lost`)
LOG_TAIL_BYTES = 64 * 1024  # how much of an existing engine.log to show when the screen opens
PER_TASK_CURVES = 10  # more per-task accuracy curves than this are unreadable: show A_t alone
FAILURE_LOG_LINES = 5  # the engine's last lines shown with a failed run's error
AFFINITY_MAX = 200  # classes the affinity heatmap shows one by one at full size (f)
STEPPED = {"relevance": "relevance", "affinity": "affinity"}  # tabs whose heatmap [ and ] step through tasks
TABS = ("accuracy", "relevance", "affinity", "losses", "log", "gpus")
FIGURES = {"accuracy": "curves", "relevance": "relevance", "affinity": "affinity", "losses": "losses"}  # p saves


class LogFollower:
    """New complete lines of a growing text file, starting near its end."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, None

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, 2)
                if self.offset is None or size < self.offset:  # first read, or the file was replaced
                    self.offset = max(0, size - LOG_TAIL_BYTES)
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a partial last line is still being written
        self.offset += end
        return data[:end].decode("utf-8", errors="replace").splitlines()


def summary(run: dict, task_rows: list[dict]) -> Text:
    """The run's metrics in one line: Last, Avg, forgetting and BWT once it has finished, else the same
    so far (after the newest evaluated task)."""
    if run.get("status") == "finished" and run.get("last") is not None:
        head, values = "", [("Last", run.get("last")), ("Avg", run.get("avg")),
                            ("Forgetting", run.get("forgetting")), ("BWT", run.get("bwt"))]
    elif task_rows:
        row = task_rows[-1]
        n = tasks.number(row["task"])
        head, values = f"after task {n}:  ", [(f"A_{n}", row.get("acc")), ("Avg", row.get("avg_acc")),
                                                       ("Forgetting", row.get("forgetting")), ("BWT", row.get("bwt"))]
    else:
        return Text("no task evaluated yet", style="dim")
    text = Text(head, style="dim")
    for i, (label, value) in enumerate((label, value) for label, value in values if value is not None):
        text.append(("  ·  " if i else "") + label + " ", style="dim")
        text.append(f"{value:.1f}", style="bold")
    return text


def failure(run: dict, log_tail: list[str]) -> Text | None:
    """Why a failed or lost run ended, for the top of its first tab: the error, then the engine's last
    log lines; None for any other run."""
    if run.get("status") not in ("failed", "lost"):
        return None
    error = run.get("error") or "no error was recorded; the engine log (5) may say more"
    text = Text(f"{run['status']}: ", style="bold red")
    text.append(error)
    for line in log_tail:
        if line.strip() != error.strip():
            text.append("\n  " + line, style="dim")
    return text


def forgetting_per_task(matrix: list[list[float | None]]) -> list[tuple[str, float]]:
    """Labelled forgetting of each old task after the newest evaluated row (the square store matrix
    pads rows with None: keep each evaluated row's first t + 1 entries)."""
    rows = [row[: t + 1] for t, row in enumerate(row for row in matrix if row and row[0] is not None)]
    return [(tasks.label(i), drop) for i, drop in enumerate(metrics.forgetting_per_task(rows))]


class LiveScreen(StoreScreen):
    """One run, live while it runs and as a report when it is done."""

    # event → panel latency is about this plus a poll (~50 ms) and a redraw; a poll that finds nothing
    # new is a stat and two small reads (well under 1 ms), so ten a second cost next to nothing
    POLL_SECONDS = 0.1
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("R", "resume_queued", "Resume in queue", show=False),
        Binding("f", "toggle_fit", "Fit/full affinity", show=False),
        Binding("left_square_bracket", "step_task(-1)", "Earlier task", key_display="["),
        Binding("right_square_bracket", "step_task(1)", "Later task", key_display="]", show=False),
        Binding("p", "save_figure", "Save figure"),
        # the panels of a tab, stacked on a small terminal, are reached without focusing anything first
        Binding("pagedown,j", "page(1)", "Scroll", key_display="PgDn/j"),
        Binding("pageup,k", "page(-1)", "Scroll up", show=False),
        *(Binding(str(i + 1), f"show_tab('{tab}')", tab.capitalize(), show=False) for i, tab in enumerate(TABS)),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    def __init__(self, run_id: str, run_dir: str | Path | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.run_dir = Path(run_dir) if run_dir else None
        self.model = LiveModel()
        self.run: dict = {}
        self.updates = 0  # RunUpdate messages handled (benchmarks and tests wait on it)
        self._seq = -1  # the store's events() counts from after_seq; the engine's first seq is 0
        self._log: LogFollower | None = None
        self._snapshot_at = 0.0
        self.fit_affinity = True  # average the affinity matrix into blocks that fit the screen (f: full size)
        self._acting = False  # a stop or resume is under way (see _launch)
        self._log_tail: deque[str] = deque(maxlen=FAILURE_LOG_LINES)  # the engine log's last lines
        self.shown_task: dict[str, int | None] = {"relevance": None, "affinity": None}  # None: the newest

    def compose(self) -> ComposeResult:
        yield RunHeader(self.run_id, id="run-header")
        with TabbedContent(id="panels"):
            with TabPane("1 Accuracy", id="accuracy"):
                # Side by side when wide; stacked in one scrolling page when narrow (see app.tcss).
                with VerticalScroll(id="accuracy-page"):
                    yield Static(id="failure")
                    yield Static(id="summary")
                    with Horizontal(id="accuracy-row"):
                        yield LineChart(title="A_t and per-task accuracy", xlabel="after task", integer_x=True,
                                        id="acc-chart")
                        with ScrollableContainer(id="accuracy-side"):  # 20 tasks are wider than the side
                            yield Heatmap(fmt="{:.1f}", vmin=0.0, vmax=100.0, id="matrix")
                            yield BarList(fmt="{:+.1f}", empty="no forgetting before task 2", id="forgetting")
            with TabPane("2 SG-AKT", id="relevance"):
                with VerticalScroll():
                    with ScrollableContainer(classes="heatmap-box"):
                        # each row is a distribution over the pool: one fixed 0–1 scale, so near-uniform
                        # rows look uniform instead of stretched across the whole colour map
                        yield Heatmap(fmt="{:.2f}", vmin=0.0, vmax=1.0, id="relevance-map")
                    yield Static(id="pool")
                    yield BarList(fmt="{:.2f}", id="utility")
            with TabPane("3 SE-VPR", id="affinity"):
                with ScrollableContainer(classes="heatmap-box"):
                    # up to 200 classes one cell each (f: full size, scrolling); more are averaged
                    yield Heatmap(fmt="{:.2f}", limit=AFFINITY_MAX, id="affinity-map")
            with TabPane("4 Losses", id="losses"):
                yield LineChart(title="losses", xlabel="tasks trained (2.5: half-way through task 3)", id="loss-chart")
            with TabPane("5 Log", id="log"):
                yield Log(max_lines=2000, id="engine-log")
            with TabPane("6 GPUs", id="gpus"):
                yield GpuPanel(self.app.gpus, self.run_id, id="gpu-panel")
        yield Footer()

    def on_mount(self) -> None:
        for widget_id, title in (("#matrix", "accuracy matrix"), ("#forgetting", "forgetting per task"),
                                 ("#relevance-map", "SG-AKT relevance"), ("#utility", "pool utility"),
                                 ("#affinity-map", "SE-VPR affinity")):
            self.query_one(widget_id).border_title = title
        affinity = self.query_one("#affinity-map", Heatmap)
        affinity.fit_hint = "f shows every class"
        affinity.max_size = self._affinity_size()
        self._show_header()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """The header's wall time counts on while the run runs, with or without events."""
        if (self.run.get("status") or self.model.status) == "running":
            self._show_header()

    # ------------------------------------------------------------------------------ store thread

    def _poll(self, store: Store) -> None:
        if self.run_dir is None:
            known = store.run(self.run_id)
            self.run_dir = Path(known["run_dir"]) if known else store.runs_dir / self.run_id
        store.ingest(self.run_dir)  # returns at once, without the write lock, when nothing was written
        if self._log is None:
            self._log = LogFollower(self.run_dir / "engine.log")
        events = store.events(self.run_id, after_seq=self._seq)
        log = self._log.read()
        now = time.monotonic()
        run = task_rows = None
        if events or now - self._snapshot_at > SNAPSHOT_SECONDS:
            self._snapshot_at = now
            store.mark_lost()  # the browser below does not poll while this screen covers it
            run, task_rows = store.run(self.run_id), store.task_rows(self.run_id)
        if events:
            self._seq = events[-1]["seq"]
        if events or log or run is not None:
            self.post_message(RunUpdate(events, run, task_rows, log))

    # ------------------------------------------------------------------------------ UI thread

    def on_run_update(self, update: RunUpdate) -> None:
        self.updates += 1
        self.model.apply(update.events)
        changed = self.model.take_changes()
        if update.run is not None:
            status_changed = any(update.run.get(k) != self.run.get(k) for k in ("status", "slurm_reason"))
            self.run = update.run
            self.model.n_tasks = self.model.n_tasks or self.run.get("n_tasks") or 0
            self._show_accuracy(update.run.get("matrix") or [], update.task_rows or [])
            if status_changed:
                changed.add("header")
        if "header" in changed:
            self._show_header()
            self.refresh_bindings()  # stop and resume follow the status
        if "losses" in changed:
            self.query_one("#loss-chart", LineChart).set_series(self.model.loss_series())
        if "relevance" in changed:
            self._show_relevance()
        if "affinity" in changed:
            self._show_affinity()
        if update.log:
            self.query_one("#engine-log", Log).write_lines(update.log)
            self._log_tail.extend(line for line in update.log if line.strip())
        if update.run is not None or update.log:
            why = failure(self.run, list(self._log_tail))
            self.query_one("#failure", Static).update(why or "")
            self.query_one("#failure", Static).set_class(why is not None, "-shown")

    def _show_header(self) -> None:
        m = self.model
        # The store's status wins: it alone knows `lost` (the process vanished without a final event).
        status = self.run.get("status") or m.status
        started, finished = self.run.get("started"), self.run.get("finished")
        running = status == "running"
        end = time.time() if running else finished  # a lost run's end is unknown
        self.query_one(RunHeader).show(
            name=self.run.get("name") or self.run_id, status=status, task=m.task,
            n_tasks=m.n_tasks, epoch=m.epoch, epochs=m.epochs, eta=m.eta() if running else None,
            ips=m.ips, gpu_mem=m.gpu_mem, took=end - started if started and end else None,
            phase=m.phase if status in ACTIVE else None,  # queued: started by hand, run_started not yet out
            slurm=slurm.job_line(self.run),
        )

    def _show_accuracy(self, matrix: list[list[float | None]], task_rows: list[dict]) -> None:
        evaluated = [t for t, row in enumerate(matrix) if row and row[0] is not None]
        labels = [tasks.label(i) for i in range(len(matrix))]
        heatmap = self.query_one("#matrix", Heatmap)
        heatmap.fmt = "{:.1f}" if len(matrix) <= PER_TASK_CURVES else "{:.0f}"  # keeps 20 tasks narrow
        heatmap.set_data(labels[: len(evaluated)], labels, matrix[: len(evaluated)],
                         caption="row t: after task t · column i: task i")
        rows = [r for r in task_rows if r.get("acc") is not None]
        series = {"A_t": ([tasks.number(r["task"]) for r in rows], [r["acc"] for r in rows])}
        if len(matrix) <= PER_TASK_CURVES:
            for i in range(len(matrix)):
                points = [(t, matrix[t][i]) for t in evaluated if matrix[t][i] is not None]
                series[tasks.label(i)] = ([tasks.number(t) for t, _ in points], [a for _, a in points])
        self.query_one("#acc-chart", LineChart).set_series(series)
        bars = self.query_one("#forgetting", BarList)
        bars.set_items(forgetting_per_task(matrix))
        mean = rows[-1].get("forgetting") if rows else None
        bars.border_title = "forgetting per task" + (f"  (mean {mean:.1f})" if mean is not None else "")
        self.query_one("#summary", Static).update(summary(self.run, rows))

    def _show_relevance(self) -> None:
        task = self.shown_task["relevance"]
        rel, pool = self.model.at("relevance", task), self.model.at("pool", task)
        if rel is not None:
            heatmap = self.query_one("#relevance-map", Heatmap)
            cols = [tasks.pool_label(c) for c in rel.get("cols") or []]
            heatmap.set_data(rel.get("rows") or [], cols, rel.get("values") or [],
                             caption="row: a class of the new task · column Tn: the adapters saved after task n")
            heatmap.border_title = f"SG-AKT relevance · task {tasks.number(rel['task'])}" + self._stepped("relevance")
            self.query_one("#utility", BarList).set_items(list(zip(cols, rel.get("utility") or [])))
        if pool is not None:
            pruned = pool.get("pruned")
            kept = [tasks.pool_label(c) for c in pool.get("kept") or []]
            self.query_one("#pool", Static).update(Text(
                f"pool after task {tasks.number(pool['task'])}: {', '.join(kept) or '(empty)'}"
                + (f"  ·  pruned: {tasks.pool_label(pruned)}" if pruned else "")
            ))

    def _show_affinity(self) -> None:
        aff = self.model.at("affinity", self.shown_task["affinity"]) or {}
        labels = aff.get("labels") or []
        heatmap = self.query_one("#affinity-map", Heatmap)
        heatmap.set_data([f"{i} {name}" for i, name in enumerate(labels)], [str(i) for i in range(len(labels))],
                         aff.get("values") or [], caption=f"{len(labels)} classes · columns by row number")
        heatmap.border_title = f"SE-VPR affinity · task {tasks.number(aff.get('task', 0))}" + self._stepped("affinity")

    def _stepped(self, kind: str) -> str:
        """What a heatmap's title adds while it shows an earlier task than the newest."""
        return "" if self.shown_task[kind] is None else " (earlier: ] for later)"

    def _affinity_size(self) -> tuple[int, int] | None:
        """The room for the affinity grid: the screen less the header, the tabs, the footer, the panel's
        border and padding and a scrollbar; None when showing it whole."""
        if not self.fit_affinity:
            return None
        width, height = self.app.size
        return max(width - 7, 20), max(height - 6, 8)

    def on_resize(self) -> None:
        self.query_one("#affinity-map", Heatmap).refit(self._affinity_size())

    # ------------------------------------------------------------------------------ actions

    def action_toggle_fit(self) -> None:
        """Affinity: blocks that fit the screen, or every class with its name (scroll to see them)."""
        self.fit_affinity = not self.fit_affinity
        self.query_one("#affinity-map", Heatmap).refit(self._affinity_size())
        self.action_show_tab("affinity")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Stop is offered only while the run is queued or running, resume only once it has ended and
        can go on (the footer shows what applies)."""
        status = self.run.get("status") or self.model.status
        if action == "stop":
            return status in ("running", "queued")
        if action in ("resume", "resume_queued"):
            return status in ("stopped", "failed", "lost", "cancelled")
        return True

    def action_page(self, direction: int) -> None:
        """Scroll the tab in view by a page (the first of its panes that scrolls down)."""
        pane = self.query_one(TabbedContent).active_pane
        for scroller in pane.query(ScrollableContainer) if pane else []:
            if scroller.max_scroll_y > 0:
                scroller.scroll_page_down() if direction > 0 else scroller.scroll_page_up()
                return

    def action_step_task(self, by: int) -> None:
        """Show the relevance or affinity of an earlier (or later) task; back at the newest, the panel
        follows new tasks again."""
        kind = STEPPED.get(self.query_one(TabbedContent).active)
        if kind is None:
            self.notify("[ and ] step through tasks on the SG-AKT (2) and SE-VPR (3) tabs.", severity="warning")
            return
        self.shown_task[kind] = self.model.step_from(kind, self.shown_task[kind], by)
        self._show_relevance() if kind == "relevance" else self._show_affinity()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_save_figure(self) -> None:
        """The figure of the tab in view as a PDF (the accuracy tab: the A_t curve)."""
        from seca_tui.screens.figure import save_figure

        kind = FIGURES.get(self.query_one(TabbedContent).active)
        if kind is None:
            self.notify("The engine log and the GPUs have no figure; open another tab (1–4).", severity="warning")
            return
        save_figure(self, kind, [self.run_id])

    def action_stop(self) -> None:
        status = self.run.get("status") or self.model.status
        if status not in ("running", "queued"):
            self.notify(f"The run is {status}; there is nothing to stop.", severity="warning")
            return
        name = self.run.get("name") or self.run_id
        question = f"Cancel the queued run {name}?" if status == "queued" else f"Stop run {name}?"

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._launch(launcher.stop, lambda outcome: (
                    "Cancelled: the run was queued and will not start." if outcome == "cancelled"
                    else "Stop requested; the engine stops after its current step."))

        self.app.push_screen(ConfirmScreen(question), confirmed)

    def action_resume(self) -> None:
        if self._resumable():
            self._launch(launcher.resume, lambda _: "Resuming from the last checkpoint.")

    def action_resume_queued(self) -> None:
        """Resume through the run queue: on the first free device, now or later."""
        if self._resumable():
            self._launch(lambda run_id, store: queue.resume(store, run_id), lambda devices: (
                f"Resuming from the last checkpoint on {','.join(devices)}." if devices
                else "Queued: the run resumes from its last checkpoint when a device is free."))

    def _resumable(self) -> bool:
        status = self.run.get("status") or self.model.status
        if status in ("running", "queued", "finished"):
            self.notify(f"The run is {status}; only stopped, failed or lost runs resume.", severity="warning")
            return False
        return True

    def _launch(self, call, message) -> None:
        """Run a launcher call off the UI thread (it signals or spawns processes) and say how it went:
        ``message(outcome)`` is the sentence for the call's return value. One at a time; the run is
        re-read before the next key counts, so a second s/r/R never answers from the status of before
        (the poll re-reads it only when events arrive or every 2 s)."""
        if self._acting:
            self.notify("The last stop or resume is still under way.", severity="warning")
            return
        self._acting = True

        def work() -> None:
            store = Store.open(self.app.home)
            try:
                try:
                    text, severity = message(call(self.run_id, store=store)), "information"
                except Exception as error:  # noqa: BLE001 - the user reads why; the screen stays
                    text, severity = str(error), "error"
                update = RunUpdate([], store.run(self.run_id), store.task_rows(self.run_id))
            finally:
                store.close()
            self.app.call_from_thread(self._acted, update, text, severity)

        self.run_worker(work, thread=True, group="launcher")

    def _acted(self, update: RunUpdate, text: str, severity: str) -> None:
        self.on_run_update(update)
        self._acting = False
        self.notify(text, severity=severity)
        self._worker.wake()
