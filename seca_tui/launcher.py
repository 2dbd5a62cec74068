"""Create run dirs and start, stop and resume engine processes, fully detached from the caller.

A run's engine must outlive whatever started it (an SSH session, a TUI that crashes): it runs in a
session of its own, reads /dev/null and appends its output to ``engine.log`` — never to a pipe the
caller holds, since writing to a closed pipe kills it with BrokenPipeError. This module writes only
``config.yaml`` and ``launch.json`` in a run dir; everything else there is the engine's.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from engine import config, paths
from engine.config import Config, ConfigError
from seca_tui.process import HOST, is_alive
from seca_tui.store import ACTIVE, Store

__all__ = ["RunHandle", "create_run", "start", "stop", "resume", "is_alive", "parse_gpus", "engine_command"]

# The folder that holds the `engine` package, found without importing it (that would load nothing
# heavy today, but the child must find it whatever our cwd is).
ENGINE_ROOT = Path(importlib.util.find_spec("engine").origin).resolve().parents[1]
RESUMABLE = ("stopped", "failed", "lost")


@dataclass
class RunHandle:
    """A created run: its id, its dir and the validated config written there."""

    run_id: str
    run_dir: Path
    config: Config


def new_run_id() -> str:
    """``20261128-203015-3fa2``: sorts by creation time; the random tail keeps same-second runs apart."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def parse_gpus(text: str) -> int | list[int]:
    """``--gpus``: a count (``2``) or a comma-separated list of device indices (``0,2``)."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise ConfigError(f"--gpus takes a count like 2 or device indices like 0,1, not '{text}'.")
    if len(parts) == 1 and "," not in text:
        if int(parts[0]) < 1:
            raise ConfigError("--gpus needs a count of at least 1.")
        return int(parts[0])
    devices = [int(p) for p in parts]
    if len(set(devices)) != len(devices):
        raise ConfigError(f"--gpus lists a device twice in '{text}'.")
    return devices


def create_run(preset_or_file: str, overrides: Sequence[str] = (), name: str | None = None,
               home: Path | None = None, gpus: int | list[int] | None = None,
               store: Store | None = None) -> RunHandle:
    """Validate the config, make ``<home>/runs/<run_id>/`` with ``config.yaml`` and ``launch.json``,
    and record the run as queued. Raises :class:`ConfigError` for any user mistake."""
    cfg = config.load(preset_or_file, list(overrides))
    if name:
        cfg.name = name
    if cfg.data.root:
        # The engine runs elsewhere and may be resumed from anywhere: pin the user's relative path now.
        cfg.data.root = str(Path(cfg.data.root).expanduser().resolve())
    home = Path(home or paths.home())
    store = store or Store.open(home)
    runs = store.runs_dir
    runs.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = runs / new_run_id()
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            continue
    _write_atomic(run_dir / "config.yaml", config.dump(cfg))
    _write_launch(run_dir, {
        "run_id": run_dir.name, "name": cfg.name, "preset": preset_or_file, "overrides": list(overrides),
        "gpus": gpus, "host": HOST, "created": time.time(),
    })
    store.register(run_dir)
    return RunHandle(run_dir.name, run_dir.resolve(), cfg)


def engine_command(run_dir: Path, resume: bool = False) -> list[str]:
    """The engine's command line for a run dir (its resolved ``config.yaml``)."""
    argv = [sys.executable, "-m", "engine", "run", str(run_dir / "config.yaml"), "--run-dir", str(run_dir)]
    return argv + ["--resume"] if resume else argv


def start(run_dir: str | Path, resume: bool = False, store: Store | None = None,
          command: Sequence[str] | None = None) -> int:
    """Start the engine on ``run_dir`` detached; returns its pid. ``command`` replaces the engine's
    command line (tests run a small script through this same path)."""
    run_dir = Path(run_dir).resolve()
    store = store or Store(run_dir.parents[1] / "runs.db")
    argv = list(command or engine_command(run_dir, resume))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ENGINE_ROOT), env.get("PYTHONPATH")]))
    with open(run_dir / "engine.log", "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=run_dir, env=env,
        )
    # Reap it when it exits, so it never lingers as a zombie that a pid check would call alive.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    launch = _read_launch(run_dir)
    launch.update({"pid": proc.pid, "host": HOST, "argv": argv, "python": sys.executable, "started": time.time()})
    _write_launch(run_dir, launch)
    store.register(run_dir, status="running", pid=proc.pid, host=HOST, finished=None, error=None,
                   stop_requested=None)
    return proc.pid


def stop(run_id: str, store: Store | None = None) -> None:
    """Ask a running run to stop gracefully (SIGTERM: it finishes the step and writes ``run_stopped``)."""
    store = store or Store.open()
    run = store.run(run_id)
    if run is None:
        raise ConfigError(f"No run '{run_id}'.")
    if run["status"] not in ACTIVE:
        raise ConfigError(f"Run {run_id} is {run['status']}, so there is nothing to stop.")
    if run["status"] == "queued" and not run["pid"]:
        store.update_run(run_id, status="stopped", finished=time.time())
        return
    alive = is_alive(run["pid"], run["host"], run["run_dir"])
    if alive is None:
        raise ConfigError(f"Run {run_id} runs on host {run['host']}; stop it from there.")
    if not alive:
        store.mark_lost()
        raise ConfigError(f"Run {run_id} has no live process any more; it is marked lost.")
    store.update_run(run_id, stop_requested=time.time())
    os.kill(run["pid"], signal.SIGTERM)


def resume(run_id: str, store: Store | None = None, command: Sequence[str] | None = None) -> int:
    """Restart a stopped, failed or lost run where its last checkpoint left it; returns the pid."""
    store = store or Store.open()
    run = store.run(run_id)
    if run is None:
        raise ConfigError(f"No run '{run_id}'.")
    store.ingest(run["run_dir"])  # a final event not yet read would change the answer
    store.mark_lost()
    status = store.run(run_id)["status"]
    if status == "queued":
        return start(run["run_dir"], store=store, command=command)  # it never started: start it
    if status not in RESUMABLE:
        hint = "stop it first" if status == "running" else "there is nothing left to run"
        raise ConfigError(f"Run {run_id} is {status}; {hint}.")
    return start(run["run_dir"], resume=True, store=store, command=command)


def _read_launch(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "launch.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_launch(run_dir: Path, launch: dict) -> None:
    _write_atomic(run_dir / "launch.json", json.dumps(launch, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Readers (another process ingesting) see the old file or the new one, never half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
