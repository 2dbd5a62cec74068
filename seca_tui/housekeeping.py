"""Keeping the run log tidy: delete runs, rename them, tag them; the CLI (``rm``, ``rename``, ``tag``)
and the runs browser both call these.

Names and tags go into ``launch.json`` as well as the store, so a run log rebuilt from the run dirs
keeps them. A run is deleted by first moving its dir out of ``runs/`` (one rename, so no ingest can
bring half of it back), then dropping its rows, then removing the moved dir.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from engine.config import ConfigError
from seca_tui import launcher
from seca_tui.process import run_processes
from seca_tui.store import Store

DELETING = "deleting"  # beside runs/: run dirs on their way out


def remove(store: Store, run_id: str) -> None:
    """Delete a run: its dir and every row about it. Refuses a queued or running run, and one whose
    engine processes are still alive."""
    run = store.run(run_id)
    if run is None:
        raise ConfigError(f"No run '{run_id}'.")
    check_removable(run)
    run_dir = Path(run["run_dir"])
    away = store.runs_dir.parent / DELETING / run_id
    if run_dir.exists():
        away.parent.mkdir(parents=True, exist_ok=True)
        run_dir.rename(away)
    store.delete(run_id)
    shutil.rmtree(away, ignore_errors=True)


def check_removable(run: dict) -> None:
    """Refuse to delete a running run, one waiting in the queue, or one whose processes still live."""
    name = run["name"] or run["run_id"]
    # a created run never started is not waiting; one in the run queue or in Slurm's is
    waiting = run["status"] == "queued" and (run.get("queued_at") or run.get("slurm_job"))
    if run["status"] == "running" or waiting:
        how = "`seca-tui cancel` takes it out of the queue" if waiting else "stop it first"
        raise ConfigError(f"Run {name} is {run['status']}; {how}.")
    alive = run_processes(Path(run["run_dir"]))
    if alive:
        raise ConfigError(f"Run {name} still has engine processes ({' '.join(map(str, alive))}); end them first.")


def rename(store: Store, run_id: str, name: str) -> None:
    """Give a run a new name, unique among the runs (a name is how people find a run)."""
    name = name.strip()
    if not name:
        raise ConfigError("A run name cannot be empty.")
    taken = [r["run_id"] for r in store.runs(include_archived=True) if r["name"] == name and r["run_id"] != run_id]
    if taken:
        raise ConfigError(f"Run {taken[0]} is already named '{name}'; choose another name.")
    _update_launch(store, run_id, name=name)
    store.update_run(run_id, name=name)


def retag(store: Store, run_id: str, add: Iterable[str] = (), drop: Iterable[str] = ()) -> list[str]:
    """Add and remove tags of a run; returns its tags now."""
    tags = (set(store.run(run_id)["tags"]) | set(add)) - set(drop)
    set_tags(store, run_id, sorted(tags))
    return sorted(tags)


def set_tags(store: Store, run_id: str, tags: list[str]) -> None:
    _update_launch(store, run_id, tags=sorted(set(tags)))
    store.set_tags(run_id, tags)


def parse_tag_ops(ops: list[str]) -> tuple[list[str], list[str]]:
    """``["+a", "-b", "c,d"]`` → tags to add (``a``, ``c``, ``d``: a bare tag adds) and to remove (``b``);
    commas separate tags as in the TUI's tags field."""
    add, drop = [], []
    for op in ops:
        sign, body = (op[0], op[1:]) if op[:1] in "+-" else ("+", op)
        tags = [t.strip() for t in body.split(",") if t.strip()]
        if not tags:
            raise ConfigError(f"'{op}' names no tag; write +tag to add one, -tag to remove one.")
        (add if sign == "+" else drop).extend(tags)
    return add, drop


def _update_launch(store: Store, run_id: str, **fields) -> None:
    run_dir = Path(store.run(run_id)["run_dir"])
    if (run_dir / "launch.json").exists():
        launcher.write_launch(run_dir, {**launcher.read_launch(run_dir), **fields})
