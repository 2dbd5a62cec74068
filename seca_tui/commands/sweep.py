"""``seca-tui sweep``: the cartesian product of config grids (× trials) as runs of one named sweep.

Every run of a sweep is tagged ``sweep:<name>`` and records its grid values in ``launch.json``
(``"sweep": {"name", "grid"}``); ``seca-tui results --sweep NAME`` groups them. Every run's config
and dataset are checked before the first one is created, so one bad value creates nothing.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

import typer
import yaml

from engine import config
from engine.config import ConfigError
from seca_tui import launcher, queue
from seca_tui import slurm as slurm_module
from seca_tui.commands.slurm_flags import SlurmRequest, slurm_flags, submit as submit_to_slurm
from seca_tui.cli import OverrideOpt, _store, _table, _trial_name, _trials, command

SWEEP_KEYS = {"preset", "grid", "set", "trials", "name", "queue"}


@dataclass
class SweepRun:
    """One run of a sweep: its name, the overrides that make it, its grid values."""

    name: str
    overrides: list[str]
    grid: dict[str, Any]


def split_values(text: str) -> list[str]:
    """``"1,[2,5],x"`` → ``["1", "[2,5]", "x"]``: commas inside brackets or braces belong to a value."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_grid(text: str) -> tuple[str, list[str]]:
    """``"train.lr=0.001,0.01"`` → ``("train.lr", ["0.001", "0.01"])``; each value is checked as a
    ``--set`` value would be (the key must exist, the value must parse)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ConfigError(f"--grid takes KEY=V1,V2,... (e.g. train.lr=0.001,0.01), not '{text}'.")
    items = split_values(values)
    if "" in items:
        raise ConfigError(f"--grid {key} has an empty value in '{values}'.")
    if len(set(items)) < len(items):
        raise ConfigError(f"--grid {key} lists a value twice in '{values}'.")
    return key, items


def _text(value: Any) -> str:
    """A YAML value from a sweep file as ``--set`` text."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def read_sweep_file(path: Path) -> dict:
    """A sweep file: ``preset``, ``grid`` ({key: [values]}), and optionally ``set`` (list of k=v or a
    mapping), ``trials``, ``name``, ``queue``."""
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"Sweep file {path} is not valid YAML: {str(e).splitlines()[0]}.") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("grid"), dict) or not isinstance(tree.get("preset"), str):
        raise ConfigError(f"Sweep file {path} needs 'preset: NAME' and 'grid: {{KEY: [V1, V2]}}'.")
    unknown = sorted(set(tree) - SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"Sweep file {path} has an unknown key '{unknown[0]}'; it takes {', '.join(sorted(SWEEP_KEYS))}.")
    grids = []
    for key, values in tree["grid"].items():
        values = values if isinstance(values, list) else [values]
        grids.append(parse_grid(f"{key}=" + ",".join(_text(v) for v in values)))
    sets = tree.get("set") or []
    sets = [f"{k}={_text(v)}" for k, v in sets.items()] if isinstance(sets, dict) else [str(s) for s in sets]
    trials = tree.get("trials")
    return {"preset": tree["preset"], "grids": grids, "sets": sets,
            "trials": None if trials is None else str(trials), "name": tree.get("name"), "queue": bool(tree.get("queue"))}


def is_sweep_file(ref: str) -> bool:
    path = Path(ref)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return True  # read_sweep_file says what is wrong with it
    return isinstance(tree, dict) and "grid" in tree


def expand(name: str, grids: list[tuple[str, list[str]]], trial_overrides: list[list[str]]) -> list[SweepRun]:
    """The cartesian product of ``grids`` × trials, in order (the last grid varies fastest, trials
    fastest of all)."""
    runs = []
    for values in itertools.product(*[items for _, items in grids]):
        pairs = [(key, value) for (key, _), value in zip(grids, values)]
        base = "-".join([name, *[f"{key.rsplit('.', 1)[-1]}={value}" for key, value in pairs]])
        grid = {key: config.parse_override(f"{key}={value}")[1] for key, value in pairs}
        for extra in trial_overrides:
            runs.append(SweepRun(_trial_name(base, extra), [f"{k}={v}" for k, v in pairs] + extra, grid))
    return runs


@command()
@slurm_flags
def sweep(
    preset: str = typer.Argument(..., metavar="PRESET|FILE.yaml", help="A preset (name or YAML file), or a sweep file."),
    grid: Optional[List[str]] = typer.Option(None, "--grid", metavar="KEY=V1,V2,...",
                                             help="Values of one config key to sweep over (repeatable: the product)."),
    overrides: Optional[List[str]] = OverrideOpt,
    trials: Optional[str] = typer.Option(None, "--trials", metavar="all|N", help="Each grid point once per trial (class order): all, or the first N."),
    in_queue: bool = typer.Option(False, "--queue", "-q", help="Wait in the run queue for free devices instead of starting all now."),
    name: Optional[str] = typer.Option(None, "--name", help="The sweep's name (tag sweep:NAME); default: the preset's."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and create nothing."),
    slurm: Optional[SlurmRequest] = None,
) -> None:
    """Start (or queue, or submit to Slurm as one array job) one run per point of the grids' product, × trials, as one named sweep."""
    spec = {"preset": preset, "grids": [], "sets": [], "trials": None, "name": None, "queue": False}
    if is_sweep_file(preset):
        spec = read_sweep_file(Path(preset))
    grids = spec["grids"] + [parse_grid(g) for g in grid or []]
    if not grids:
        raise ConfigError("A sweep needs at least one --grid KEY=V1,V2,... (or a 'grid:' in its file).")
    repeated = sorted({k for k, _ in grids if [g for g, _ in grids].count(k) > 1})
    if repeated:
        raise ConfigError(f"--grid names '{repeated[0]}' twice; give all its values in one --grid.")
    sets = spec["sets"] + list(overrides or [])
    base = config.load(spec["preset"], sets)
    trials = trials if trials is not None else spec["trials"]
    sweep_name = name or spec["name"] or base.name
    runs = expand(sweep_name, grids, _trials(base, trials) if trials is not None else [[]])
    # Everything is checked (each run's values, its dataset root and task plan) before anything exists.
    cfgs = [launcher.prepare(spec["preset"], [*sets, *r.overrides], r.name, here=slurm is None) for r in runs]
    keys = [k for k, _ in grids]
    if dry_run:
        _table(["run", *keys, "trial"], [[r.name, *[_text(r.grid[k]) for k in keys], c.scenario.trial]
                                         for r, c in zip(runs, cfgs)])
        typer.echo(f"{len(runs)} runs in sweep {sweep_name} (dry run: nothing created).")
        return
    if slurm is not None and in_queue:
        raise ConfigError("--queue is the local run queue's; with --slurm, Slurm queues the jobs.")
    queued = (in_queue or spec["queue"]) and slurm is None
    if queued:
        queue.check_fits(None, queue.devices())
    if slurm is not None and slurm_module.available():
        raise ConfigError(slurm_module.available())
    store = _store()
    tag = f"sweep:{sweep_name}"
    if store.db.execute("SELECT 1 FROM runs WHERE tags LIKE ? LIMIT 1", [f'%"{tag}"%']).fetchone():
        raise ConfigError(f"A sweep named '{sweep_name}' exists already; give this one another --name.")
    handles = [launcher.create_run(spec["preset"], [*sets, *r.overrides], name=r.name, store=store, cfg=c,
                                   queued=queued, tags=[tag], extra={"sweep": {"name": sweep_name, "grid": r.grid}})
               for r, c in zip(runs, cfgs)]
    if slurm is not None:
        jobs = submit_to_slurm(store, [h.run_dir for h in handles], slurm)
        started = {h.run_id: f"submitted as job {job}" for h, job in zip(handles, jobs)}
    elif queued:
        started = {run_id: f"started on {','.join(chosen)}" for run_id, chosen in queue.schedule(store)}
        if queue.pending(store):
            queue.ensure_scheduler()
    else:
        for h in handles:
            launcher.start(h.run_dir, store=store)
        started = {h.run_id: "started" for h in handles}
    for h in handles:
        where = started.get(h.run_id, "queued")
        typer.echo(f"Run {h.config.name} {where}: {h.run_dir}")
    typer.echo(f"Sweep {sweep_name}: {len(handles)} runs; `seca-tui results --sweep {sweep_name}` groups them.")
    typer.echo("\n".join(h.run_id for h in handles))
