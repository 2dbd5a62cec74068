"""Ask where to export the selected runs as CSV and which table; dismisses with ``(path, table)`` or None."""
from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from seca_tui.export import TABLES



class ExportScreen(ModalScreen[tuple[Path, str] | None]):
    """Enter in the path field exports; escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, count: int, default: Path) -> None:
        super().__init__()
        self.count, self.default = count, default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Export {self.count} run{'s' if self.count != 1 else ''} as CSV")
            yield Select([(t, t) for t in TABLES], value="tasks", allow_blank=False, id="table")
            yield Input(str(self.default), placeholder="file path", id="path")
            yield Label("", id="export-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def on_input_submitted(self) -> None:
        self.action_export()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_export() if event.button.id == "export" else self.action_cancel()

    def action_export(self) -> None:
        text = self.query_one("#path", Input).value.strip()
        path = Path(text).expanduser() if text else None
        if path is None or path.is_dir() or not path.parent.is_dir():
            self.query_one("#export-error", Label).update("Give a file path in an existing folder.")
            return
        self.dismiss((path, str(self.query_one("#table", Select).value)))

    def action_cancel(self) -> None:
        self.dismiss(None)
