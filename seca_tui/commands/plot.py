"""``seca-tui plot``: one figure of the selected runs to a PNG, PDF or SVG file (seca_tui/plots.py)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from seca_tui import plots
from seca_tui.cli import _store, command
from seca_tui.commands.results import GroupOpt, SelectorsArg, SweepOpt, TagOpt, parse_keys, select_runs


@command()
def plot(
    run_refs: Optional[List[str]] = SelectorsArg,
    kind: str = typer.Option(..., "--kind", help=", ".join(plots.KINDS) + "."),
    out: Path = typer.Option(..., "--out", metavar="FILE", help="The figure file: .png, .pdf or .svg."),
    tag: Optional[str] = TagOpt,
    sweep: Optional[str] = SweepOpt,
    group_by: Optional[str] = GroupOpt,
) -> None:
    """Draw a figure for a paper: A_t curves (mean ± std per group), accuracy matrix, forgetting per
    task, relevance, affinity or losses."""
    plots.check_out(out)
    store = _store()
    chosen = select_runs(store, run_refs, tag, sweep)
    data = {r["run_id"]: plots.load(store, r["run_id"]) for r in chosen}
    plots.save(plots.figure(kind, chosen, data, parse_keys(group_by)), out)
    typer.echo(f"Wrote {out}.")
