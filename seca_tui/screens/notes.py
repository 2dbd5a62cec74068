"""Edit a run's tags and notes in a modal; dismisses with ``(tags, notes)`` or None when cancelled."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags, as the field's placeholder says (a tag may hold spaces), without blanks or
    repeats, in the order typed."""
    tags = [" ".join(t.split()) for t in text.split(",")]
    return list(dict.fromkeys(t for t in tags if t))


class NotesScreen(ModalScreen[tuple[list[str], str] | None]):
    """ctrl+s saves from anywhere in the dialog; escape cancels."""

    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_name: str, tags: list[str], notes: str) -> None:
        super().__init__()
        self.run_name, self.tags, self.notes = run_name, tags, notes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content.assemble("Tags and notes of ", (self.run_name, "bold")))  # the name as typed
            yield Input(", ".join(self.tags), placeholder="tags, comma separated", id="tags")
            yield TextArea(self.notes, id="notes")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self) -> None:
        self.query_one("#notes", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        self.dismiss((parse_tags(self.query_one("#tags", Input).value), self.query_one("#notes", TextArea).text))

    def action_cancel(self) -> None:
        self.dismiss(None)
