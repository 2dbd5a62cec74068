"""The runs browser (the app's first screen): every run in the store, filtered, sorted, ticked to compare.

A store thread shows what the database holds at once (first paint), then ingests the run dirs and marks
runs whose process vanished as lost, and repeats every few seconds or as soon as the status or archived
choice changes; the filter field's text is applied on the UI thread to the runs it read. It also samples the GPUs (seca_tui/gpus.py) for the GPU panel under the table and on the live screen.
Edits (tags, notes, archive, cancelling a queued run) and exports are jobs on the same thread, so the
refresh after an edit sees it. The same thread gives the run queue a turn every few seconds, even while
another screen covers this one, so queued runs start while the TUI is open.
"""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Input, Select, Static

from engine.config import ConfigError  # (the store imports it already)
from seca_tui import export, run_filter, slurm
from seca_tui.export import flat_config
from seca_tui.messages import RunsLoaded
from seca_tui.screens.export import ExportScreen
from seca_tui.screens.notes import NotesScreen
from seca_tui.screens.store_worker import StoreScreen
from seca_tui.store import STATUSES, Store
from seca_tui.widgets.gpu_panel import GpuPanel
from seca_tui.widgets.runs_table import SHOWN_KEYS, RunsTable

ANY_STATUS = "any"
FIRST_PAINT_RUNS = 200  # the runs read for the first paint (a tall screen's window); the rest come next


class RunsScreen(StoreScreen):
    """Keys: enter opens a run, space ticks, c compares the ticked runs, n starts a new one."""

    BINDINGS = [
        Binding("n", "new_run", "New run"),
        Binding("c", "compare", "Compare"),
        Binding("r", "results", "Results", tooltip="The ticked runs, else the filtered ones, grouped over trials"),
        Binding("e", "export", "Export"),
        Binding("t", "notes", "Tags"),
        Binding("x", "cancel_run", "Cancel", tooltip="Cancel the queued run under the cursor"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("a", "archive", "Archive"),
        Binding("d", "delete_run", "Delete", tooltip="Delete the run under the cursor and its run dir"),
        Binding("f2", "rename_run", "Rename"),
        Binding("A", "toggle_archived", "Show archived"),
        Binding("k", "pick_columns", "Columns", tooltip="Choose the config keys shown as columns"),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        # priority: "/" is acted on before the keys after it go anywhere, so "/run" typed fast or pasted
        # lands in the filter (else "r" reached the table first, and opened the results screen)
        Binding("slash", "focus_filter", "Filter", priority=True),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_archived = False
        self._query: tuple[str, bool] = (ANY_STATUS, False)  # the status and archived runs: read by the store thread
        self._read: tuple | None = None  # the run log's changes() and the query the last read was for
        self._posted: tuple | None = None  # the last runs sent, to skip identical refreshes
        self._listed: list[dict] = []  # the runs of the query, before the filter field's text
        self._problem: str | None = None  # why the filter keeps no run (a config key no run has)
        self._partial = False  # the table lists the newest runs only, the rest still being read
        self._painted = False  # the first rows are on screen
        self._shown = True  # False while another screen covers this one: no polling then

    def compose(self) -> ComposeResult:
        with Horizontal(id="filter-bar"):
            yield Input(placeholder="filter: name, tag, note, method, dataset, key=value (lr=1e-3)  (/)",
                        compact=True, id="search")
            yield Select([("any status", ANY_STATUS)] + [(s, s) for s in STATUSES], value=ANY_STATUS,
                         allow_blank=False, compact=True, id="status")
        yield RunsTable(id="runs")
        yield Static(id="runs-summary")
        yield GpuPanel(self.app.gpus, id="runs-gpus")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    # ------------------------------------------------------------------------------ store thread

    def _poll(self, store: Store) -> None:
        if self._painted:  # the first paint does not wait for the queue's imports or NVML's start
            self._schedule(store)
            self.app.gpus.sample(store)  # on this thread, the one that lives as long as the app
        if not self._shown:
            return  # the screen on top polls what it shows; on_screen_resume catches up
        self._post(store)  # what the database knows now, before the slower ingest
        if not self._painted:
            return  # ingest competes with the first paint for the GIL: it starts once the rows show
        if store.ingest_all() or store.mark_lost():
            self._post(store)

    def _schedule(self, store: Store) -> None:
        """Start the queued runs that fit on a free device now (one cheap read when none waits)."""
        from seca_tui import queue  # the launcher and the engine's config: not needed for the first paint

        for run_id, devices in queue.schedule(store):
            run = store.run(run_id) or {}
            self.app.call_from_thread(self.notify, f"Started queued run {run.get('name') or run_id} "
                                                   f"on {','.join(devices)}.")

    def _post(self, store: Store) -> None:
        """The runs of the status chosen, archived ones or not; the filter field's text is applied to them
        on the UI thread (:meth:`_filter`), so typing never waits for the store thread's ingest."""
        status, archived = self._query
        read = (store.changes(), self._query, self._painted)
        if read == self._read:
            return  # nothing written since the last read, the same query: the same runs
        # The first paint needs the newest screenful: reading ten thousand runs took a second
        limit = None if self._painted else FIRST_PAINT_RUNS
        runs = store.runs(status=None if status == ANY_STATUS else status, include_archived=archived,
                          with_config=True, limit=limit)
        self._read = read  # (a read that failed is tried again)
        if (runs, self._painted) != self._posted:
            self._posted = (runs, self._painted)
            self.post_message(RunsLoaded(runs, partial=not self._painted and len(runs) == limit))

    # ------------------------------------------------------------------------------ UI thread

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self._listed, self._partial = message.runs, message.partial
        self._filter()
        if not self._painted:
            self.call_after_refresh(self._first_paint_done)

    def _filter(self) -> None:
        """Show the listed runs that the filter field keeps: its words as a search text, its ``key=value``
        words as config filters (run_filter). Ten thousand runs take a few tens of milliseconds."""
        search, wheres = run_filter.split_query(self.query_one("#search", Input).value)
        runs = run_filter.search(self._listed, search)
        try:
            runs, self._problem = run_filter.filter_runs(runs, wheres=wheres), None
        except ConfigError as error:  # a key no run has, or one that could be several
            runs, self._problem = [], str(error)
        # which config keys differ takes every run's config parsed (once, then cached): not for the first paint
        self.table.show(runs, None if self._partial else run_filter.differing_keys(runs))
        self._show_summary()

    def on_screen_suspend(self) -> None:
        self._shown = False

    def on_screen_resume(self) -> None:
        self._shown = True
        if self._worker is not None:
            self._worker.wake()

    def _first_paint_done(self) -> None:
        self._painted = True
        self._worker.wake()

    def on_runs_table_ticks_changed(self) -> None:
        self._show_summary()

    def on_runs_table_highlighted(self) -> None:
        self._show_summary()

    def _show_summary(self) -> None:
        table = self.table
        count = len(table.runs)
        held = (f"the newest {count} runs, reading the rest…" if self._partial
                else f"run {table.cursor_index + 1:,} of {count:,}" if count > table.page
                else f"{count} run{'s' if count != 1 else ''}")
        parts = [held, f"{len(table.ticked)} ticked",
                 f"sorted by {table.sort_label} {'↓' if table.sort_reverse else '↑'}",
                 "archived shown" if self.show_archived else "archived hidden"]
        summary = Text("  ·  ".join(parts))
        run = self.current_run()
        if self._problem:
            summary = Text.assemble(("filter: ", "bold yellow"), self._problem)
        elif run and run.get("status") in ("failed", "lost") and run.get("error"):
            # why the run under the cursor ended, where the eye already is
            summary = Text.assemble((f"{run['status']}: ", "bold red"), str(run["error"]))
        elif run and slurm.job_line(run):
            summary = Text.assemble(summary, "  ·  ", slurm.job_line(run))
        self.query_one("#runs-summary", Static).update(summary)

    def _requery(self) -> None:
        """The status or the archived switch changed: the store thread reads the runs again now."""
        self._query = (str(self.query_one("#status", Select).value), self.show_archived)
        if self._worker is not None:
            self._worker.wake()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self._filter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            self.table.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "status":
            self._requery()

    def on_runs_table_opened(self, event: RunsTable.Opened) -> None:
        self.open_run(event.run_id)

    def current_run(self) -> dict | None:
        return self.table.current_run

    def selected_ids(self) -> list[str]:
        """The ticked runs, else the one under the cursor."""
        if self.table.ticked:
            return sorted(self.table.ticked)
        run = self.current_run()
        return [run["run_id"]] if run else []

    # The live, new run and compare screens are imported when first opened: they pull in plotext, the
    # launcher and the engine's config loader, which the first paint of the browser does not need.

    def open_run(self, run_id: str) -> None:
        from seca_tui.screens.live import LiveScreen

        run = self.table.run(run_id) or {}
        self.app.push_screen(LiveScreen(run_id, run.get("run_dir")))

    # ------------------------------------------------------------------------------ actions

    def action_new_run(self) -> None:
        from seca_tui.screens.new_run import NewRunScreen

        self.app.push_screen(NewRunScreen())

    def action_compare(self) -> None:
        from seca_tui.screens.compare import CompareScreen

        ticked = sorted(self.table.ticked)
        if len(ticked) < 2:
            self.notify("Tick two or more runs with space, then press c.", severity="warning")
            return
        self.app.push_screen(CompareScreen(ticked))

    def action_results(self) -> None:
        from seca_tui.screens.results import ResultsScreen

        run_ids = sorted(self.table.ticked) or [r["run_id"] for r in reversed(self.table.runs)]
        if not run_ids:
            self.notify("No runs to group; start one with n.", severity="warning")
            return
        self.app.push_screen(ResultsScreen(run_ids))

    def action_notes(self) -> None:
        run = self.current_run()
        if run is None:
            return

        def save(result: tuple[list[str], str] | None) -> None:
            if result is not None:
                tags, notes = result
                from seca_tui import housekeeping  # tags go into launch.json too, as the CLI's `tag` does

                self._worker.submit(lambda store: (housekeeping.set_tags(store, run["run_id"], tags),
                                                   store.set_notes(run["run_id"], notes)))

        self.app.push_screen(NotesScreen(run.get("name") or run["run_id"], run.get("tags") or [],
                                         run.get("notes") or ""), save)

    def action_archive(self) -> None:
        run = self.current_run()
        if run is None:
            return
        archived = not run.get("archived")
        self._worker.submit(lambda store: store.set_archived(run["run_id"], archived))
        hint = "" if self.show_archived or not archived else " (A shows archived runs)"
        self.notify(f"{'Archived' if archived else 'Unarchived'} {run.get('name') or run['run_id']}{hint}.")

    def action_cancel_run(self) -> None:
        """Take the queued run under the cursor out of the queue, once the user says yes."""
        run = self.current_run()
        if run is None:
            return
        name = run.get("name") or run["run_id"]
        if run.get("status") != "queued":
            hint = "; open it and press s to stop it" if run.get("status") == "running" else ""
            self.notify(f"{name} is {run.get('status')}: only a queued run can be cancelled{hint}.", severity="warning")
            return

        from seca_tui import launcher

        # refused if it started (or was cancelled) meanwhile
        self.act_once_confirmed(f"Cancel the queued run {name}?", lambda store: launcher.cancel(run["run_id"], store),
                                f"Cancelled {name}: it was queued and will not start.")

    def action_delete_run(self) -> None:
        """Delete the run under the cursor (its dir and rows), once the user says yes."""
        run = self.current_run()
        if run is None:
            return
        name = run.get("name") or run["run_id"]

        from seca_tui import housekeeping

        # refused if it is running, or its engine is still exiting
        self.act_once_confirmed(f"Delete the run {name} and its run dir? This cannot be undone.",
                                lambda store: housekeeping.remove(store, run["run_id"]), f"Deleted {name} and its run dir.")

    def action_rename_run(self) -> None:
        run = self.current_run()
        if run is None:
            return
        from seca_tui.screens.rename import RenameScreen

        def rename(name: str | None) -> None:
            if name is None:
                return

            def job(store: Store) -> None:
                from engine.config import ConfigError
                from seca_tui import housekeeping

                try:
                    housekeeping.rename(store, run["run_id"], name)
                except ConfigError as error:  # the name is taken
                    self.app.call_from_thread(self.notify, str(error), severity="warning")

            self._worker.submit(job)

        self.app.push_screen(RenameScreen(run.get("name") or run["run_id"]), rename)

    def action_toggle_archived(self) -> None:
        self.show_archived = not self.show_archived
        self._requery()
        self._show_summary()

    def action_export(self) -> None:
        ids = self.selected_ids()
        if not ids:
            self.notify("No runs to export.", severity="warning")
            return

        def write(result: tuple[Path, str] | None) -> None:
            if result is None:
                return
            path, table = result

            def job(store: Store) -> None:
                columns, rows = export.table_rows(store, ids, table)
                with open(path, "w", newline="", encoding="utf-8") as out:
                    count = export.write_csv(out, columns, rows)
                self.app.call_from_thread(self.notify, f"Wrote {count} {table} rows of {len(ids)} run(s) to {path}.")

            self._worker.submit(job)

        self.app.push_screen(ExportScreen(len(ids), Path.cwd() / "seca-runs.csv"), write)

    def action_pick_columns(self) -> None:
        from seca_tui.screens.config_keys import DEFAULT, ConfigKeysScreen

        table = self.table
        keys = [k for k in dict.fromkeys(k for r in table.runs for k in flat_config(r.get("config_json")))
                if k not in SHOWN_KEYS]
        if not keys:
            self.notify("The runs shown have no config to choose columns from.", severity="warning")
            return

        def pick(choice: list[str] | str | None) -> None:
            if choice is not None:
                table.chosen_keys = None if choice == DEFAULT else choice
                table.show(table.runs)

        self.app.push_screen(ConfigKeysScreen(keys, table.config_keys, table.differing), pick)

    def action_cycle_sort(self) -> None:
        self.table.cycle_sort()
        self._show_summary()

    def action_reverse_sort(self) -> None:
        self.table.sort_by(self.table.sort_key, not self.table.sort_reverse)
        self._show_summary()

    def action_focus_filter(self) -> None:
        search = self.query_one("#search", Input)
        if self.focused is search:
            raise SkipAction  # a "/" typed in the filter (w/o) is text: the key goes on to it, in order
        self.set_focus(search)  # now, not after the keys already read, as focus() would

    def action_focus_table(self) -> None:
        self.table.focus()
