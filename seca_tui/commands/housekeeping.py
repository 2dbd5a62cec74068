"""``seca-tui rm``, ``rename`` and ``tag``: keeping the run log tidy (seca_tui/housekeeping.py does it)."""
from __future__ import annotations

import sys
from typing import List

import typer

from engine.config import ConfigError
from seca_tui import housekeeping
from seca_tui.cli import _store, command

RunArg = typer.Argument(..., metavar="RUN", help="Run id, name, a unique prefix, or the id's last part.")


@command()
def rm(
    run_refs: List[str] = typer.Argument(..., metavar="RUN", help="Runs to delete (ids, names or unique prefixes)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete runs: their run dirs and everything the run log holds about them (not a running run)."""
    store = _store()
    run_ids = list(dict.fromkeys(store.resolve(r) for r in run_refs))
    runs = [store.run(r) for r in run_ids]
    for run in runs:  # every run checked before any is deleted
        housekeeping.check_removable(run)
    if not yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise ConfigError("rm asks before deleting; without a terminal to ask on, add --yes.")
        names = ", ".join(r["name"] or r["run_id"] for r in runs)
        if not typer.confirm(f"Delete {len(runs)} run(s) ({names}) and their run dirs?", default=False):
            typer.echo("Nothing deleted.")
            raise typer.Exit(1)
    for run in runs:
        housekeeping.remove(store, run["run_id"])
        typer.echo(f"Deleted run {run['run_id']} ({run['name']}).")


@command()
def rename(run_ref: str = RunArg, name: str = typer.Argument(..., metavar="NAME", help="The new name (unique).")) -> None:
    """Give a run a new name."""
    store = _store()
    run_id = store.resolve(run_ref)
    housekeeping.rename(store, run_id, name)
    typer.echo(f"Run {run_id} is now named '{name.strip()}'.")


@command(context_settings={"ignore_unknown_options": True})  # so that -draft is an argument, not an option
def tag(
    run_ref: str = RunArg,
    ops: List[str] = typer.Argument(..., metavar="+TAG|-TAG...", help="+t adds tag t, -t removes it; commas separate tags."),
) -> None:
    """Add or remove tags of a run: `seca-tui tag RUN +baseline -draft`."""
    add, drop = housekeeping.parse_tag_ops(ops)
    store = _store()
    run_id = store.resolve(run_ref)
    tags = housekeeping.retag(store, run_id, add, drop)
    typer.echo(f"Run {run_id} tags: {', '.join(tags) or '(none)'}.")
