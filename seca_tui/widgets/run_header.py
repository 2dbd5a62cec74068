"""One line about a run: status (and its Slurm job's), what the engine is doing while it starts a task,
task k/T, epoch, ETA, its wall time (so far, or how long it took), images/s and GPU memory when reported."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from seca_tui import tasks

STATUS_STYLE = {"running": "bold green", "finished": "bold", "failed": "bold red", "lost": "bold yellow",
                "stopped": "bold magenta", "queued": "bold cyan", "cancelled": "dim"}


def duration(seconds: float) -> str:
    """``"1h02m"``, ``"4m05s"``, ``"12s"``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class RunHeader(Static):
    """Updated with :meth:`show`; the fields are plain values so the screen owns no formatting."""

    def show(
        self, *, name: str, status: str, task: int | None, n_tasks: int, epoch: int | None, epochs: int,
        eta: float | None, ips: float | None, gpu_mem: float | None, took: float | None = None,
        phase: str | None = None, slurm: str | None = None,
    ) -> None:
        """``took``: wall seconds from the run's start to its end, or to now while it runs."""
        parts: list[tuple[str, str]] = [(name, "bold"), (f"● {status}", STATUS_STYLE.get(status, "bold"))]
        if slurm:
            parts.append((slurm, "dim"))
        if phase:
            parts.append((f"{phase}…", "italic"))
        if task is not None:
            parts.append((f"task {tasks.number(task)}/{n_tasks or '?'}", ""))
        if epoch is not None and epochs:
            parts.append((f"epoch {epoch + 1}/{epochs}", ""))
        if eta is not None:
            parts.append((f"ETA {duration(eta)}", ""))
        if took is not None:
            parts.append((f"{'elapsed' if status == 'running' else 'took'} {duration(took)}", ""))
        if ips is not None:
            parts.append((f"{ips:,.0f} img/s", ""))
        if gpu_mem is not None:
            parts.append((f"GPU {gpu_mem / 2**30:.1f} GiB", ""))
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (part, style) in enumerate(parts):
            text.append(("  " if i else "") + part, style=style)
        self.update(text)
