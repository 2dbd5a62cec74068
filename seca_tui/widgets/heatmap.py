"""A heatmap drawn as a coloured cell grid with the values printed in the cells and a colour legend.

plotext's own heatmap needs pandas and is greyscale, so the grid is built here as Rich text. Large
matrices (SE-VPR affinity over hundreds of classes) are averaged into blocks so the grid stays readable;
the widget sizes itself to its content, so a scrolling container around it shows the rest.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

Value = float | None

# Viridis anchor colours: ordered in lightness, readable on dark and light themes, colour-blind safe.
_STOPS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
_LEGEND_STEPS = 10
LABEL_MAX = 18  # row labels are cut to this many characters
EXTRA_LINES = 4  # lines besides the cells: column labels, legend, block note, caption


def colour(fraction: float) -> tuple[int, int, int]:
    """The colour map at ``fraction`` in [0, 1] (clamped), linearly between the anchors."""
    fraction = min(max(fraction, 0.0), 1.0) * (len(_STOPS) - 1)
    i = min(int(fraction), len(_STOPS) - 2)
    t = fraction - i
    a, b = _STOPS[i], _STOPS[i + 1]
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _cell_style(rgb: tuple[int, int, int]) -> Style:
    r, g, b = rgb
    light = 0.299 * r + 0.587 * g + 0.114 * b > 140  # dark text on the yellow end, light on the purple
    return Style(bgcolor=f"rgb({r},{g},{b})", color="black" if light else "white")


def _blocks(n: int, limit: int) -> list[range]:
    """Split ``range(n)`` into at most ``limit`` contiguous blocks of equal size (the last may be short)."""
    size = max(1, math.ceil(n / limit))
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _mean(values: list[Value]) -> Value:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def downsample(
    rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[Value]], limit: int
) -> tuple[list[str], list[str], list[list[Value]]]:
    """Average ``values`` into at most ``limit`` × ``limit`` blocks; block labels name the index range
    (a lone index for a block of one), names stay where an axis is not averaged."""
    row_blocks, col_blocks = _blocks(len(rows), limit), _blocks(len(cols), limit)

    def label(names: Sequence[str], block: range) -> str:
        if len(block) > 1:
            return f"{block[0]}–{block[-1]}"
        return names[block[0]] if len(names) <= limit else str(block[0])

    grid = [
        [_mean([_at(values, r, c) for r in rb for c in cb]) for cb in col_blocks] for rb in row_blocks
    ]
    return [label(rows, b) for b in row_blocks], [label(cols, b) for b in col_blocks], grid


def fit_limit(rows: Sequence[str], cols: Sequence[str], cell: int, width: int, height: int) -> int:
    """The block limit at which a grid of ``cell``-wide cells (space included) with its row labels fits
    ``width`` columns and ``height`` rows of cells: every row and column when they fit, else square-ish
    blocks whose labels are index ranges."""
    label = min(max(map(len, rows), default=0), LABEL_MAX) + 1
    if label + len(cols) * cell <= width and len(rows) <= height:
        return max(len(rows), len(cols), 1)
    label = len(f"{len(rows) - 1}–{len(rows) - 1}") + 1
    return max(2, min((width - label) // cell, height))


def _at(values: Sequence[Sequence[Value]], r: int, c: int) -> Value:
    """``values[r][c]``, or None for the ragged parts (e.g. the upper triangle of an accuracy matrix)."""
    row = values[r] if r < len(values) else ()
    return row[c] if c < len(row) else None


class Heatmap(Static):
    """A coloured cell grid: row labels on the left, column labels on top, values in the cells.

    ``cells`` holds the printed cell texts (row-major, after block averaging) so tests and callers can
    read what is shown without parsing the rendering.
    """

    def __init__(
        self,
        *,
        fmt: str = "{:.1f}",
        limit: int = 40,
        vmin: float | None = None,
        vmax: float | None = None,
        empty: str = "waiting for data…",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """``fmt`` formats a value; ``limit`` caps rows and columns (larger inputs are block-averaged);
        ``vmin``/``vmax`` fix the colour scale (accuracy is always 0–100), else it spans the data."""
        super().__init__(id=id, classes=classes)
        self.fmt, self.limit, self.vmin, self.vmax, self.empty = fmt, limit, vmin, vmax, empty
        self.max_size: tuple[int, int] | None = None  # (columns, lines) to fit in, by averaging more
        self.fit_hint = ""  # said after the block note while averaging to fit (how to see every cell)
        self._data: tuple = ((), (), (), "")  # the last set_data, for refit()
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.cells: list[list[str]] = []
        self.block_note = ""
        self.caption = ""

    def on_mount(self) -> None:
        self.update(self._render_grid([]))

    def set_data(
        self, rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[Value]], caption: str = ""
    ) -> None:
        """Show a new matrix (``values[r][c]``; missing or None cells are left blank) with an optional
        dim ``caption`` line under the legend (what rows and columns are; titles stay short)."""
        self._data = (rows, cols, values, caption)
        self.caption = caption
        limit = self.limit
        if self.max_size is not None:
            present = [v for row in values for v in row if v is not None]
            cell = max([len(self.fmt.format(v)) for v in present] + [3]) + 1
            width, height = self.max_size
            limit = min(limit, fit_limit(rows, cols, cell, width, height - EXTRA_LINES))
        shown_rows, shown_cols, grid = downsample(rows, cols, values, limit)
        big = len(shown_rows) < len(rows) or len(shown_cols) < len(cols)
        self.block_note = f"{len(rows)}×{len(cols)} averaged into {len(shown_rows)}×{len(shown_cols)} blocks" if big else ""
        if big and limit < self.limit and self.fit_hint:
            self.block_note += f" to fit · {self.fit_hint}"
        self.row_labels, self.col_labels = shown_rows, shown_cols
        self.cells = [["" if v is None else self.fmt.format(v) for v in row] for row in grid]
        self.update(self._render_grid(grid))

    def refit(self, max_size: tuple[int, int] | None) -> None:
        """Fit the last matrix into ``max_size`` (columns, lines) by averaging, or show it whole (None)."""
        if max_size != self.max_size:
            self.max_size = max_size
            if self._data[0]:
                self.set_data(*self._data)

    def _render_grid(self, grid: list[list[Value]]) -> Text:
        if not grid:
            return Text(self.empty, style="dim")
        present = [v for row in grid for v in row if v is not None]
        lo = self.vmin if self.vmin is not None else min(present, default=0.0)
        hi = self.vmax if self.vmax is not None else max(present, default=1.0)
        span = (hi - lo) or 1.0
        texts = [t for row in self.cells for t in row]
        width = max([len(t) for t in texts] + [3]) + 1  # a space between cells
        label_width = min(max(len(r) for r in self.row_labels), LABEL_MAX)

        text = Text(no_wrap=True, overflow="crop")
        text.append(" " * (label_width + 1))
        # Block ranges too wide for a cell: every column shows its block's first index (the ranges are on
        # the matching rows), not a mix of ranges and indices
        starts = any(len(col) >= width for col in self.col_labels)
        for col in self.col_labels:
            col = col.split("–")[0] if starts else col
            text.append(col[: width - 1].rjust(width - 1) + " ", style="bold")
        for label, row, cells in zip(self.row_labels, grid, self.cells):
            text.append("\n" + label[:label_width].ljust(label_width) + " ", style="bold")
            for value, cell in zip(row, cells):
                if value is None:
                    text.append("·".rjust(width - 1) + " ", style="dim")
                else:
                    text.append(cell.rjust(width - 1) + " ", style=_cell_style(colour((value - lo) / span)))
        text.append("\n" + " " * (label_width + 1) + self.fmt.format(lo) + " ")
        for step in range(_LEGEND_STEPS):
            text.append("  ", style=_cell_style(colour(step / (_LEGEND_STEPS - 1))))
        text.append(" " + self.fmt.format(hi))
        for note in (self.block_note, self.caption):
            if note:
                text.append("\n" + note, style="dim")
        return text
