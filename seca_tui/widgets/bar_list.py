"""Labelled horizontal bars, one per line: pool utility per pool entry, forgetting per task."""
from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

_EIGHTHS = " ▏▎▍▌▋▊▉"  # partial block characters give bars 1/8-cell resolution


def bar(fraction: float, width: int) -> str:
    """A bar of ``width`` cells filled to ``fraction`` (clamped to [0, 1])."""
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


class BarList(Static):
    """``label  ██████▍   value`` lines; bars scale to the largest value (or a fixed maximum)."""

    def __init__(
        self, *, fmt: str = "{:.2f}", vmax: float | None = None, empty: str = "waiting for data…",
        id: str | None = None, classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.fmt, self.vmax, self.empty = fmt, vmax, empty
        self.items: list[tuple[str, float]] = []

    def on_mount(self) -> None:
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()  # bar length follows the panel width

    def set_items(self, items: Sequence[tuple[str, float]]) -> None:
        """Show ``(label, value)`` pairs in order."""
        self.items = list(items)
        self._redraw()

    def _redraw(self) -> None:
        if not self.items:
            self.update(Text(self.empty, style="dim"))
            return
        labels = [label for label, _ in self.items]
        values = [self.fmt.format(v) for _, v in self.items]
        label_width = min(max(map(len, labels)), 16)
        value_width = max(map(len, values))
        width = max((self.size.width or 40) - label_width - value_width - 3, 4)
        top = self.vmax if self.vmax is not None else max((abs(v) for _, v in self.items), default=0.0)
        text = Text(no_wrap=True, overflow="crop")
        for i, ((label, value), shown) in enumerate(zip(self.items, values)):
            text.append(("\n" if i else "") + label[:label_width].rjust(label_width) + " ", style="bold")
            text.append(bar(abs(value) / top if top else 0.0, width), style="cyan")  # the sign shows in the value
            text.append(" " + shown.rjust(value_width))
        self.update(text)
