"""Rename a run in a modal; dismisses with the new name, or None when cancelled or left unchanged."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class RenameScreen(ModalScreen[str | None]):
    """enter renames; escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content.assemble("New name for ", (self.run_name, "bold")))  # the name as typed
            yield Input(self.run_name, placeholder="a name no other run has", id="new-name")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        self.dismiss(name if name and name != self.run_name else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
