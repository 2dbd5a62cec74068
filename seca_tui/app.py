"""The seca-tui Textual app: the runs browser first, and from it the new run, live run and compare screens.

Everything that blocks (SQLite, ingest, launching engines) runs on the screens' worker threads and comes
back as messages (seca_tui.messages); the engine itself is never imported here.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.markup import escape
from textual.screen import Screen

from seca_tui.gpus import GpuMonitor
from seca_tui.messages import StoreFailed
from seca_tui.screens.runs import RunsScreen


class SecaApp(App):
    """``SecaApp(home)`` runs against the seca-tui home ``home`` (default: ``SECA_TUI_HOME`` or the XDG path)."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute, so subclasses elsewhere find it too
    TITLE = "seca-tui"
    # a narrow footer cannot show every key: ? lists all of the screen's keys beside it
    BINDINGS = [Binding("question_mark", "toggle_keys", "Keys", key_display="?"),
                Binding("ctrl+q", "quit", "Quit", key_display="^q")]  # Textual's own quit, shown in the footer

    def __init__(self, home: str | Path | None = None) -> None:
        super().__init__()
        self.home = Path(home).expanduser() if home else None
        self.gpus = GpuMonitor()  # sampled by the browser's store thread, shown by every screen's GPU panel

    def get_default_screen(self) -> Screen:
        return RunsScreen()

    @property
    def browser(self) -> RunsScreen:
        """The runs browser, always at the bottom of the screen stack."""
        return self.screen_stack[0]  # type: ignore[return-value]

    def notify(self, message: str, *, markup: bool = False, **kwargs) -> None:
        """Every notification is plain text: they quote run names, tags, paths and errors, the user's text,
        in which ``[trial-3]`` or ``[/b]`` would be read as markup (and crash the app). Widget.notify
        passes ``markup=True`` on, so the flag is not taken from callers."""
        super().notify(message, markup=False, **kwargs)

    def on_store_failed(self, message: StoreFailed) -> None:
        self.notify(message.text, severity="error", timeout=6)

    def action_toggle_keys(self) -> None:
        """Show or hide the panel that lists every key of the screen and the focused widget."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_browser(self) -> None:
        """Back to the runs browser from wherever the user is."""
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def open_run(self, run_id: str) -> None:
        self.action_browser()
        self.browser.open_run(run_id)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        browser = self.browser
        yield SystemCommand("Runs browser", "Back to the list of runs", self.action_browser)
        yield SystemCommand("New run", "Choose a preset, a split and a method, and launch", browser.action_new_run)
        yield SystemCommand("Compare ticked runs", "Overlaid curves, metrics and config differences",
                            browser.action_compare)
        yield SystemCommand("Export runs as CSV", "The ticked runs, else the one under the cursor",
                            browser.action_export)
        yield SystemCommand("Show or hide archived runs", "Toggle archived runs in the browser",
                            browser.action_toggle_archived)
        for run in browser.table.runs:  # found by typing, not listed on an empty search
            name = escape(run.get("name") or run["run_id"])  # the palette reads titles as markup
            yield SystemCommand(f"Open run {name}", escape(f"{run.get('status')} · {run.get('method')} · {run['run_id']}"),
                                partial(self.open_run, run["run_id"]), discover=False)
