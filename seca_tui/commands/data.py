"""``seca-tui data check``: whether a preset's dataset and weights are there before a run needs them."""
from __future__ import annotations

from typing import List, Optional

import typer

from engine import config
from seca_tui import launcher
from seca_tui.cli import OverrideOpt, _die, app, command

data_app = typer.Typer(help="Check datasets before running on them.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")


@command(data_app, name="check")
def data_check(
    preset: str = typer.Argument(..., help="Preset name or YAML file whose dataset to check."),
    overrides: Optional[List[str]] = OverrideOpt,
) -> None:
    """Read a preset's dataset and count classes and images (or show the folder layout it expects), say
    how many of the classes the preset's tasks use, and check that its model's weights can be had."""
    cfg = config.load(preset, overrides or [])
    from engine.data.registry import load_source  # the readers import torch: only this command pays
    from engine.data.scenario import build_plan

    source = load_source(cfg.data)
    typer.echo(f"{source.name}: {len(source.class_names)} classes, {len(source.train)} train images, "
               f"{len(source.test)} test images")
    plan = build_plan(cfg.scenario, list(source.class_names))
    used = set(plan.order)  # dataset class indices
    train = sum(1 for c in source.train.labels if c in used)
    typer.echo(f"{cfg.name or preset} uses {len(plan.order)} of them in {len(plan.tasks)} tasks "
               f"({train} train images)")
    problem = launcher.weights_problem(cfg.model)
    if problem:
        _die(problem)
    typer.echo(f"model {cfg.model.name}: weights {cfg.model.pretrained or 'none'} can be had here")
