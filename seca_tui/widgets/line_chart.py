"""A plotext line chart that is cheap enough to feed live.

plotext draws on the UI thread (10 series × 240 points at 120×30 took ≈430 ms), so the chart
- keeps a point budget: each series is averaged down to about two points per column (braille resolution),
- caches its rendering until the data, the size or the theme changes,
- redraws at most twice a second however often new data arrives, and at once after a quiet spell.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

from textual.app import RenderResult
from textual.timer import Timer
from textual_plotext import PlotextPlot

REDRAW_SECONDS = 0.5
WHISKER_COLOURS = ["blue+", "orange+", "green+", "red+", "magenta+", "cyan+"]  # plotext names

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

    def render(self) -> RenderResult:
        key = (self._drawn_version, self.size, self.app.theme, self.theme)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        plt = self.plt
        plt.clear_data()
        plt.title(self.chart_title)
        plt.xlabel(self.xlabel)
        budget = max(2 * self.size.width, 8)
        for i, (name, (xs, ys)) in enumerate(self.series.items()):
            if not xs:
                continue
            px, py = thin(xs, ys, budget)
            if name not in self.whiskers:
                plt.plot(px, py, label=name, marker="braille")
                continue
            colour = WHISKER_COLOURS[i % len(WHISKER_COLOURS)]  # the line and its bars in one colour
            plt.plot(px, py, label=name, marker="braille", color=colour)
            lows, highs = self.whiskers[name]
            # plotext centres a bar of length yerr on y: centre it between low and high
            plt.error(list(xs), [(lo + hi) / 2 for lo, hi in zip(lows, highs)],
                      yerr=[hi - lo for lo, hi in zip(lows, highs)], color=colour)
        if self.integer_x:
            top = max((max(xs) for xs, _ in self.series.values() if xs), default=0)
            ticks = list(range(0, int(top) + 1, max(1, math.ceil((top + 1) / 10))))
            plt.xticks(ticks, [str(t) for t in ticks])
        self.draws += 1
        rendered = super().render()
        self._cache = (key, rendered)
        return rendered
