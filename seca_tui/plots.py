"""Figures for a paper, drawn with matplotlib on ``Figure`` objects (no pyplot, no display; matplotlib
is imported by the first call, never with the CLI). Sizes fit a two-column paper: one column is
3.5 in wide, both 7 in. Tasks are numbered 1…T (seca_tui/tasks.py); accuracies are in %.
Lines use the Okabe–Ito palette and heatmaps viridis or cividis, which colour-blind readers and
greyscale prints tell apart.

Means and spreads come from seca_tui/results.py: a group's curve is the mean over its finished runs
with a ± 1 sample-std band; a group with no finished run draws its runs alone, dashed.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from engine.config import ConfigError
from seca_tui import metrics, results, tasks
from seca_tui.store import Store

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KINDS = ("curves", "matrix", "forgetting", "relevance", "affinity", "losses")
SUFFIXES = (".png", ".pdf", ".svg")
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
COLUMN_IN, PAGE_IN = 3.5, 7.0
MAX_PANELS = 4  # heatmaps side by side on one page width
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "pdf.fonttype": 42, "svg.fonttype": "none"}  # editable text in PDF/SVG


@dataclass
class RunData:
    """What the figures of one run need, read from the run log."""

    run: dict  # as Store.run gives it
    accs: list[float | None]  # A_t per task
    matrix: list[list[float]]  # rows a_{t,0..t} of the tasks evaluated so far
    relevance: dict | None  # the newest relevance rows (of the last task that has them)
    affinity: dict | None
    steps: list[dict]

    @property
    def label(self) -> str:
        return self.run.get("name") or self.run["run_id"]


def load(store: Store, run_id: str) -> RunData:
    run = store.run(run_id)
    matrix = [[a for a in row if a is not None] for row in run["matrix"]]
    matrix = [row for t, row in enumerate(matrix) if len(row) == t + 1]
    relevance = store.per_task(run_id, "relevance")
    affinity = store.per_task(run_id, "affinity")
    return RunData(run, [r["acc"] for r in store.task_rows(run_id)], matrix, relevance[-1] if relevance else None,
                   affinity[-1] if affinity else None, store.steps(run_id))


def _task_axis(ax: Any, count: int, axis: str = "x") -> None:
    ticks = list(range(1, count + 1))
    step = max(1, math.ceil(count / 10))  # at most ~10 labels
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks[::step])


def _new(width: float, height: float) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _legend(fig: "Figure", ax: Any) -> None:
    """Above the axes, where it hides no data; two columns when it is long."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=2 if len(labels) > 3 else 1, frameon=False)


def _colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


# ----------------------------------------------------------------------------------------- kinds

def curves(groups: Sequence[results.Group], data: dict[str, RunData]) -> "Figure":
    """A_t after each task per group: the mean over finished runs with a ± 1 std band."""
    fig = _new(COLUMN_IN, 2.5)
    ax = fig.add_subplot()
    longest = 0
    for i, group in enumerate(groups):
        colour = _colour(i)
        if group.finished:
            b = results.band([data[r].accs for r in group.finished])
            x = [tasks.number(t) for t in range(len(b.mean))]
            ax.plot(x, b.mean, color=colour, marker="o", markersize=2.5, linewidth=1.2,
                    label=f"{results.group_label(group)} (n={group.n})")
            if group.n > 1:
                std = [s or 0.0 for s in b.std]
                ax.fill_between(x, [m - s for m, s in zip(b.mean, std)], [m + s for m, s in zip(b.mean, std)],
                                color=colour, alpha=0.2, linewidth=0)
            longest = max(longest, len(x))
        for r in ([] if group.finished else group.unfinished):
            accs = [a for a in data[r].accs if a is not None]
            x = [tasks.number(t) for t in range(len(accs))]
            ax.plot(x, accs, color=colour, linestyle="--", marker="o", markersize=2.5, linewidth=1.0,
                    label=f"{data[r].label} (unfinished)")
            longest = max(longest, len(x))
    ax.set_xlabel("task")
    ax.set_ylabel("accuracy $A_t$ (%)")
    _task_axis(ax, longest)
    ax.grid(alpha=0.3, linewidth=0.5)
    _legend(fig, ax)
    return fig


def forgetting(groups: Sequence[results.Group], data: dict[str, RunData]) -> "Figure":
    """Forgetting of each old task at the end (max_t a_{t,i} − a_{T,i}), bars per group: mean ± std."""
    fig = _new(COLUMN_IN, 2.5)
    ax = fig.add_subplot()
    drawn = [(g, [metrics.forgetting_per_task(data[r].matrix) for r in g.finished if len(data[r].matrix) > 1])
             for g in groups]
    drawn = [(g, drops) for g, drops in drawn if drops]
    if not drawn:
        raise ConfigError("No finished run with two tasks or more among them: forgetting needs an old task.")
    width = 0.8 / len(drawn)
    longest = 0
    for i, (group, drops) in enumerate(drawn):
        b = results.band(drops)
        x = [tasks.number(t) - 0.4 + width * (i + 0.5) for t in range(len(b.mean))]
        err = [s or 0.0 for s in b.std] if len(drops) > 1 else None
        ax.bar(x, b.mean, width=width, yerr=err, color=_colour(i), capsize=1.5, error_kw={"linewidth": 0.6},
               label=f"{results.group_label(group)} (n={len(drops)})")
        longest = max(longest, len(b.mean))
    ax.set_xlabel("task")
    ax.set_ylabel("forgetting (%)")
    _task_axis(ax, longest)
    ax.axhline(0, color="black", linewidth=0.5)
    _legend(fig, ax)
    return fig


def _panels(runs: Sequence[RunData], what: str, rows: int = 1, ratios: Sequence[float] | None = None):
    if len(runs) > MAX_PANELS:
        raise ConfigError(f"A {what} figure shows at most {MAX_PANELS} runs side by side; {len(runs)} are selected.")
    width = COLUMN_IN if len(runs) == 1 else PAGE_IN
    fig = _new(width, (2.8 if len(runs) == 1 else 2.2) * (1.25 if rows > 1 else 1))
    grid = fig.add_gridspec(rows, len(runs), height_ratios=ratios)
    return fig, grid


def matrix(runs: Sequence[RunData]) -> "Figure":
    """The accuracy matrix a_{t,i} of each run, with its values; blank above the diagonal."""
    fig, grid = _panels(runs, "matrix")
    for k, data in enumerate(runs):
        if not data.matrix:
            raise ConfigError(f"Run {data.label} has no evaluation yet: no accuracy matrix to draw.")
        size = len(data.matrix)
        cells = [[row[i] if i < len(row) else None for i in range(size)] for row in data.matrix]
        ax = fig.add_subplot(grid[0, k])
        image = ax.imshow([[math.nan if v is None else v for v in row] for row in cells], cmap="viridis",
                          vmin=0, vmax=100, extent=(0.5, size + 0.5, size + 0.5, 0.5))
        _annotate_extent(ax, cells)
        ax.set_xlabel("evaluated on task $i$")
        ax.set_ylabel("after task $t$")
        ax.set_title(data.label)
        _task_axis(ax, size, "x")
        _task_axis(ax, size, "y")
    fig.colorbar(image, ax=fig.axes, label="accuracy (%)", shrink=0.8)
    return fig


def _annotate_extent(ax: Any, cells: Sequence[Sequence[float | None]]) -> None:
    """Each cell's value, dark on light cells and light on dark ones (viridis runs dark → light)."""
    size = max(3.0, 7.0 - 0.3 * len(cells))
    for t, row in enumerate(cells):
        for i, v in enumerate(row):
            if v is not None:
                ax.text(i + 1, t + 1, f"{v:.1f}", ha="center", va="center", fontsize=size,
                        color="black" if v > 60 else "white")


def relevance(runs: Sequence[RunData]) -> "Figure":
    """SG-AKT relevance of the last task's classes to each pool adapter, with the pool's utility."""
    fig, grid = _panels(runs, "relevance", rows=2, ratios=[4, 1])
    for k, data in enumerate(runs):
        rel = data.relevance
        if not rel:
            raise ConfigError(f"Run {data.label} has no relevance data (methods without an adapter pool have none).")
        cols = [tasks.pool_label(c) for c in rel["cols"]]
        ax = fig.add_subplot(grid[0, k])
        image = ax.imshow(rel["values"], cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(cols)), cols)
        if len(rel["rows"]) <= 30:
            ax.set_yticks(range(len(rel["rows"])), rel["rows"])
        else:
            ax.set_yticks([])
        ax.set_title(f"{data.label}: task {tasks.number(rel['task'])}")
        ax.set_ylabel("class")
        fig.colorbar(image, ax=ax, label="relevance", shrink=0.9)
        below = fig.add_subplot(grid[1, k], sharex=ax)
        utility = [u if u is not None else 0.0 for u in (rel["utility"] or [])]
        below.bar(range(len(utility)), utility, color=OKABE_ITO[0])
        below.set_xlabel("pool adapter")
        below.set_ylabel("utility")
    return fig


def affinity(runs: Sequence[RunData]) -> "Figure":
    """SE-VPR's class affinity matrix of the last task that has one."""
    fig, grid = _panels(runs, "affinity")
    for k, data in enumerate(runs):
        aff = data.affinity
        if not aff:
            raise ConfigError(f"Run {data.label} has no affinity data (only SE-VPR classifiers write it).")
        ax = fig.add_subplot(grid[0, k])
        image = ax.imshow(aff["values"], cmap="cividis")
        labels = aff["labels"]
        if len(labels) <= 30:
            ax.set_xticks(range(len(labels)), labels, rotation=90)
            ax.set_yticks(range(len(labels)), labels)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(f"{data.label}: task {tasks.number(aff['task'])}")
        fig.colorbar(image, ax=ax, label="affinity", shrink=0.8)
    return fig


def losses(runs: Sequence[RunData]) -> "Figure":
    """Each loss over training steps: a colour per loss, a line style per run."""
    fig = _new(COLUMN_IN, 2.5)
    ax = fig.add_subplot()
    names = sorted({name for data in runs for s in data.steps for name in s["losses"]})
    if not names:
        raise ConfigError("The selected runs have no training steps yet: no losses to draw.")
    styles = ["-", "--", ":", "-."]
    for k, data in enumerate(runs):
        for i, name in enumerate(names):
            points = [(n, s["losses"][name]) for n, s in enumerate(data.steps, start=1)
                      if s["losses"].get(name) is not None]
            if points:
                x, y = zip(*points)
                ax.plot(x, y, color=_colour(i), linestyle=styles[k % len(styles)], linewidth=0.9,
                        label=name if len(runs) == 1 else f"{data.label}: {name}")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3, linewidth=0.5)
    _legend(fig, ax)
    return fig


# ----------------------------------------------------------------------------------------- entry

def figure(kind: str, runs: Sequence[dict], data: dict[str, RunData],
           group_by: Sequence[str] | None = None) -> "Figure":
    """The figure of ``kind`` for ``runs`` (as Store.run gives them; ``data`` by run id). Curves and
    forgetting are per group (:func:`results.group_runs`); the others per run."""
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not '{kind}'.")
    import matplotlib

    with matplotlib.rc_context(STYLE):
        if kind in ("curves", "forgetting"):
            groups = results.group_runs(runs, group_by)
            return (curves if kind == "curves" else forgetting)(groups, data)
        return {"matrix": matrix, "relevance": relevance, "affinity": affinity, "losses": losses}[kind](
            [data[r["run_id"]] for r in runs])


def check_out(path: Path) -> None:
    """Refuse an output file whose format we do not write or whose folder is missing."""
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--out must end in {', '.join(SUFFIXES)}, not '{path.name}'.")
    if not path.parent.is_dir():
        raise ConfigError(f"The folder {path.parent} does not exist.")


def save(fig: "Figure", path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG at 300 dpi; PDF and SVG as vectors), whole or not at all: it is
    written beside it first and renamed, so a viewer (or the TUI's "saved" check) never sees half a file."""
    import matplotlib

    check_out(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with matplotlib.rc_context(STYLE):
            fig.savefig(partial, dpi=300, format=path.suffix.lower().lstrip("."))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
