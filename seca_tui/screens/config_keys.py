"""Pick the config keys the runs browser shows as columns; dismisses with the keys ticked, DEFAULT for
the keys whose values differ among the runs shown, or None when cancelled."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection

DEFAULT = "differing"


class ConfigKeysScreen(ModalScreen[list[str] | str | None]):
    """space ticks a key, enter shows the ticked keys, d the differing ones, escape cancels."""

    # enter applies even from the list, whose own enter would tick like space
    BINDINGS = [Binding("enter", "apply", "Show ticked", priority=True), Binding("d", "differing", "Differing keys"),
                Binding("escape", "cancel", "Cancel")]

    def __init__(self, keys: list[str], shown: list[str], differing: list[str]) -> None:
        super().__init__()
        self.keys, self.shown, self.differing = keys, set(shown), set(differing)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="config-keys"):
            yield Label("Config columns (while they fit the width) · space ticks · enter shows · "
                        "d: the keys that differ · escape")
            # keys come from config files: plain content, never markup
            yield SelectionList(*(Selection(Content.assemble(key, (" (differs)" if key in self.differing else "", "dim")),
                                            key, key in self.shown) for key in self.keys))

    def action_apply(self) -> None:
        ticked = set(self.query_one(SelectionList).selected)
        self.dismiss([key for key in self.keys if key in ticked])  # in the configs' order

    def action_differing(self) -> None:
        self.dismiss(DEFAULT)

    def action_cancel(self) -> None:
        self.dismiss(None)
