"""``seca-tui bench``: the engine's own benchmark, run as a process of its own."""
from __future__ import annotations

import subprocess
import sys
from typing import Optional

import typer

from seca_tui import launcher
from seca_tui.cli import command


@command()
def bench(
    full_run: bool = typer.Option(False, "--full-run", help="Also time a whole 10-task run through the engine."),
    full_run_epochs: int = typer.Option(10, "--full-run-epochs", metavar="N", help="Epochs per task of the full run."),
    steps: Optional[int] = typer.Option(None, "--steps", metavar="N", help="Timed training steps."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    check_goals: bool = typer.Option(False, "--check-goals", help="Exit 1 when a GPU goal is not met."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of the table."),
) -> None:
    """How fast the SECA step runs here against the device's peak (python -m engine.bench)."""
    argv = ["--device", device, "--full-run-epochs", str(full_run_epochs)]
    argv += [flag for flag, on in (("--full-run", full_run), ("--check-goals", check_goals), ("--json", as_json)) if on]
    argv += ["--steps", str(steps)] if steps else []
    # its own process: torch stays out of the CLI, and the benchmark measures a process of its own
    raise typer.Exit(subprocess.run([sys.executable, "-m", "engine.bench", *argv], env=launcher.child_env()).returncode)
