"""``seca-tui import``: published per-task logs as runs with the status ``imported`` (importers.py).

Each file becomes a run dir like ours (``config.yaml``, ``events.jsonl``, ``launch.json``), so the
run log rebuilt from the run dirs keeps it; ``launch.json``'s ``imported`` holds the source and the
published numbers beside ours. Every file is parsed before anything is written: one bad line
anywhere imports nothing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import List, Optional

import typer
import yaml

from engine.config import ConfigError
from seca_tui import importers, launcher
from seca_tui.cli import _num, _store, command
from seca_tui.store import Store

_TRIAL = re.compile(r"trial\D?(\d+)", re.IGNORECASE)


def trial_of(path: Path) -> int | None:
    """The trial a published file names (``trial=0.txt``, ``seed_trial2.jsonl``), else ``None``."""
    match = _TRIAL.search(path.stem)
    return int(match.group(1)) if match else None


def write_run(store: Store, published: importers.Published, name: str, method: str, dataset: str | None,
              source: Path) -> str:
    """A run dir for ``published``, made beside ``runs/`` and moved in whole, then ingested."""
    trial = trial_of(source)
    cfg = {"name": name, "method": method, "data": {"name": dataset},
           "scenario": {"n_tasks": len(published.tasks), **({"trial": trial} if trial is not None else {})}}
    store.runs_dir.mkdir(parents=True, exist_ok=True)
    run_id = launcher.new_run_id()
    while (store.runs_dir / run_id).exists():
        run_id = launcher.new_run_id()
    staging = store.path.parent / f".import-{run_id}"  # outside runs/: no reader ingests it half-written
    now = time.time()
    try:
        staging.mkdir()
        (staging / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        lines = [{"v": 1, "seq": seq, "ts": now, **ev} for seq, ev in enumerate(importers.events(published, cfg, run_id))]
        (staging / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        (staging / "launch.json").write_text(json.dumps({
            "run_id": run_id, "name": name, "preset": None, "created": now,
            "imported": {"source": str(source.resolve()), "format": "continual-clip",
                         "published": published.theirs(), "ours": published.ours()},
        }, indent=2) + "\n")
        os.replace(staging, store.runs_dir / run_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    store.ingest(store.runs_dir / run_id)
    return run_id


@command(name="import")
def import_cmd(
    files: List[Path] = typer.Argument(..., metavar="FILE...", help="Per-task JSON-lines logs (Continual-CLIP / SECA format)."),
    name: Optional[str] = typer.Option(None, "--name", help="The run's name (with several files: NAME-<file stem>)."),
    method: Optional[str] = typer.Option(None, "--method", help="The method column (default: the file's folder name and '(published)', e.g. 'SECA (published)')."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="The dataset column, e.g. imagenet-r."),
) -> None:
    """Read published per-task logs into the run log as runs with status imported."""
    parsed = []
    for path in files:
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"Cannot read {path}: {e.strerror or e}.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not a text file.") from None
        parsed.append((path, importers.parse_continual_clip(text, str(path))))
    store = _store()
    ids = []
    for path, published in parsed:
        folder = path.resolve().parent.name
        run_name = (f"{name}-{path.stem}" if len(files) > 1 else name) if name else f"{folder}-{path.stem}"
        # "(published)": beside our own SECA runs, theirs must not read as ours
        run_id = write_run(store, published, run_name, method or f"{folder} (published)", dataset, path)
        ids.append(run_id)
        theirs, ours = published.theirs(), published.ours()
        typer.echo(f"Imported {path} as run {run_name} ({len(published.tasks)} tasks): Last {_num(theirs['last'])}  "
                   f"Avg {_num(theirs['avg'])}  Forgetting {_num(theirs['forgetting'])} published, "
                   f"{_num(ours['forgetting'])} ours  BWT {_num(theirs['bwt'])} published, {_num(ours['bwt'])} ours")
    typer.echo("\n".join(ids))
