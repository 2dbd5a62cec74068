"""A plotext line chart that is cheap enough to feed live.

plotext draws on the UI thread (10 series × 240 points at 120×30 took ≈430 ms), so the chart
- keeps a point budget: each series is averaged down to about two points per column (braille resolution),
- caches its rendering until the data, the size or the theme changes,
- redraws at most twice a second however often new data arrives, and at once after a quiet spell.

Its legend is drawn beside the plot, never on it (plotext's own sits over the data): one line per
series in the series' colour, in as many columns as the height needs.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.timer import Timer
from textual_plotext import PlotextPlot

REDRAW_SECONDS = 0.5
# One colour per series, for its line, its whiskers and its legend entry: distinct on dark and light
# backgrounds (Trubetskoy's list of distinct colours), A_t and ten tasks before any repeats.
COLOURS = [(0, 130, 200), (230, 25, 75), (60, 180, 75), (255, 225, 25), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (170, 110, 40), (0, 128, 128)]
LEGEND_NAME = 16  # the most of a series name the legend shows; longer ones end in …

Series = tuple[Sequence[float], Sequence[float]]


def thin(xs: Sequence[float], ys: Sequence[float], budget: int) -> tuple[list[float], list[float]]:
    """At most ``budget`` points: consecutive points are averaged in equal-sized buckets."""
    n = len(xs)
    if n <= budget:
        return list(xs), list(ys)
    size = math.ceil(n / budget)
    out_x, out_y = [], []
    for i in range(0, n, size):
        out_x.append(sum(xs[i:i + size]) / len(xs[i:i + size]))
        out_y.append(sum(ys[i:i + size]) / len(ys[i:i + size]))
    return out_x, out_y


class LineChart(PlotextPlot):
    """Named line series over a shared x axis; set them with :meth:`set_series`."""

    def __init__(
        self, *, title: str = "", xlabel: str = "", integer_x: bool = False,
        id: str | None = None, classes: str | None = None,
    ) -> None:
        """``integer_x``: the x values are task indices, so label whole numbers only."""
        super().__init__(id=id, classes=classes)
        self.chart_title, self.xlabel, self.integer_x = title, xlabel, integer_x
        self.series: dict[str, Series] = {}
        self.whiskers: dict[str, Series] = {}  # name → (lows, highs) at the series' xs: a spread per point
        self._version = 0  # bumped when the data changes
        self._drawn_version = 0  # what the last refresh showed
        self._cache: tuple[object, RenderResult] | None = None
        self._timer: Timer | None = None  # a pending redraw
        self._last_flush = 0.0  # time.monotonic() of the last redraw request
        self.draws = 0  # how many times plotext actually built a plot (for benchmarks and tests)

    def set_series(self, series: Mapping[str, Series], whiskers: Mapping[str, Series] | None = None) -> None:
        """Replace all series (and ``whiskers``: a vertical bar from low to high at each point of the
        series of that name, e.g. the min–max over trials). The chart redraws at once if it has not drawn for ``REDRAW_SECONDS``,
        else when that time is up: a lone update shows without delay, a stream at most twice a second."""
        self.series = dict(series)
        self.whiskers = dict(whiskers or {})
        self._version += 1
        if self._timer is not None:
            return  # a redraw is due already
        wait = self._last_flush + REDRAW_SECONDS - time.monotonic()
        if wait > 0:
            self._timer = self.set_timer(wait, self._flush)
        else:
            self._flush()  # (a zero-delay Timer would divide by zero in Textual 8's skip logic)

    def _flush(self) -> None:
        self._timer = None
        self._last_flush = time.monotonic()
        if self._drawn_version != self._version:
            self._drawn_version = self._version
            self.refresh()

    def legend(self) -> list[Text]:
        """One entry per series with points: a bar in its colour and its name (the user's text, never markup)."""
        entries = []
        for i, (name, (xs, _)) in enumerate(self.series.items()):
            if xs:
                entry = Text("━ ", style=Style(color=Color.from_rgb(*COLOURS[i % len(COLOURS)])))
                entry.append(name if len(name) <= LEGEND_NAME else name[: LEGEND_NAME - 1] + "…")
                entries.append(entry)
        return entries

    def render(self) -> RenderResult:
        key = (self._drawn_version, self.size, self.app.theme, self.theme)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        plt = self.plt
        plt.clear_data()
        plt.title(self.chart_title)
        plt.xlabel(self.xlabel)
        entries = self.legend()
        per_column = max(1, self.size.height - 2)  # entries beside the plot, below its title
        columns = math.ceil(len(entries) / per_column)
        entry_width = max((e.cell_len for e in entries), default=0)
        width = max(self.size.width - columns * (entry_width + 1), 10)
        budget = max(2 * width, 8)
        for i, (name, (xs, ys)) in enumerate(self.series.items()):
            if not xs:
                continue
            colour = COLOURS[i % len(COLOURS)]  # the line, its whiskers and its legend entry in one colour
            plt.plot(*thin(xs, ys, budget), marker="braille", color=colour)
            if name in self.whiskers:
                lows, highs = self.whiskers[name]
                # plotext centres a bar of length yerr on y: centre it between low and high
                plt.error(list(xs), [(lo + hi) / 2 for lo, hi in zip(lows, highs)],
                          yerr=[hi - lo for lo, hi in zip(lows, highs)], color=colour)
        if self.integer_x:
            top = max((max(xs) for xs, _ in self.series.values() if xs), default=0)
            ticks = list(range(0, int(top) + 1, max(1, math.ceil((top + 1) / 10))))
            plt.xticks(ticks, [str(t) for t in ticks])
        self.draws += 1
        # PlotextPlot.render draws over the whole widget; the plot here leaves the legend its columns
        plt.plotsize(width, self.size.height)
        plt._set_size(width, self.size.height)  # as PlotextPlot.render does (textual-plotext issue 5)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        rendered = beside(Text.from_ansi(plt.build()).split("\n"), width, entries, per_column, entry_width)
        self._cache = (key, rendered)
        return rendered


def beside(plot: list[Text], width: int, entries: list[Text], per_column: int, entry_width: int) -> Text:
    """The plot's lines, each padded to ``width``, then the legend: ``per_column`` entries a column from
    the second line down (the first holds the plot's title), each column a space and the entries padded
    to ``entry_width``."""
    lines = []
    for y, line in enumerate(plot):
        line = line.copy()
        line.pad_right(width - line.cell_len)
        line.truncate(width)
        if 1 <= y <= per_column:
            for entry in entries[y - 1::per_column]:
                line.append(" ").append_text(entry)
                line.pad_right(entry_width - entry.cell_len)
        lines.append(line)
    return Text("\n").join(lines)
