"""The GPU panel: one line per GPU with its utilisation and memory over the last minutes (sparklines), now,
and the runs on it; one line saying why when NVML cannot be read. Drawn from a :class:`GpuMonitor` that a
store thread samples; the panel only redraws what the monitor holds."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from seca_tui.gpus import SAMPLE_S, GpuMonitor, GpuRow, cells, unavailable_line

BLOCKS = "▁▂▃▄▅▆▇█"
SPARK = 16  # the most cells per sparkline; a longer history is averaged into them
FIXED = 44  # a line without its sparklines and run names: mark, index, name, utilisation, memory, gaps
RUNS = 20  # the room kept for run names before the sparklines shrink


def sparkline(values: tuple[float | None, ...], top: float, width: int = SPARK) -> str:
    """``values`` (0…``top``; None unknown, drawn blank) as block characters, the newest on the right,
    right-aligned in ``width`` cells; more values than cells are averaged in equal runs."""
    size = max(1, -(-len(values) // width))  # values per cell, rounded up
    out = []
    for end in range(len(values) % size or size, len(values) + 1, size):  # the oldest cell may be short
        known = [v for v in values[max(0, end - size):end] if v is not None]
        level = sum(known) / len(known) / top if known and top else None
        out.append(" " if level is None else BLOCKS[min(len(BLOCKS) - 1, int(level * len(BLOCKS)))])
    return "".join(out).rjust(width)


class GpuPanel(Static):
    """``GpuPanel(monitor, run_id)``: the GPUs ``run_id`` holds, if any, are marked ▸."""

    def __init__(self, monitor: GpuMonitor, run_id: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.monitor, self.run_id = monitor, run_id
        self._shown: object = None  # what was drawn last, to skip unchanged redraws

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(SAMPLE_S / 2, self.redraw)

    def on_resize(self) -> None:
        self._shown = None  # the sparklines' width follows the panel's
        self.redraw()

    def redraw(self) -> None:
        monitor = self.monitor
        if (monitor.rows, monitor.unavailable) == self._shown:
            return
        self._shown = (monitor.rows, monitor.unavailable)
        if monitor.unavailable is not None:
            self.update(Text(unavailable_line(monitor.unavailable), style="dim"))
        elif not monitor.rows:
            self.update(Text("GPUs: reading NVML…", style="dim"))
        else:
            spark = max(4, min(SPARK, (self.content_size.width - FIXED - RUNS) // 2))
            self.update(Text("\n").join(self._line(row, spark) for row in monitor.rows))

    def _line(self, row: GpuRow, spark: int) -> Text:
        index, name, util, memory, runs = cells(row.gpu, row.runs)
        mine = any(run["run_id"] == self.run_id for run in row.runs)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("▸" if mine else " ", style="bold")
        text.append(f"{index:>2} {name[:14]:<14} ")
        text.append(sparkline(row.util, 100, spark), style="green")
        text.append(f" {util:>4}  ")
        text.append(sparkline(row.mem, 1.0, spark), style="cyan")
        text.append(f" {memory:>15}  ")
        text.append(runs, style="" if row.runs else "dim")  # the user's run names: Text, never markup
        return text
