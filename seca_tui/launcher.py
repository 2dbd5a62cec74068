"""Create run dirs and start, stop and resume engine processes, fully detached from the caller.

A run's engine must outlive whatever started it (an SSH session, a TUI that crashes): it runs in a
session of its own, reads /dev/null and appends its output to ``engine.log`` — never to a pipe the
caller holds, since writing to a closed pipe kills it with BrokenPipeError. This module writes only
``config.yaml`` and ``launch.json`` in a run dir; everything else there is the engine's.

Data-parallel runs (``--gpus 2`` or ``--gpus 0,1``) start through ``python -m torch.distributed.run
--standalone --nproc_per_node K``: the recorded pid is torchrun's agent, which leads the session,
so a stop signals the whole process group. ``--gpus`` counts processes; a list also sets
``CUDA_VISIBLE_DEVICES``. With ``train.device=cpu`` the K processes are CPU ranks over gloo.

Before anything is created, :func:`prepare` checks the config, the dataset root, the task plan and
that the model's weights can be had (cached, a local file, or a reachable hub), so a mistake leaves no
run dir and no run in the log.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
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
from seca_tui import slurm
from seca_tui.process import HOST, is_alive, run_processes
from seca_tui.store import ACTIVE, Store

__all__ = ["RunHandle", "prepare", "preflight", "create_run", "start", "spawn", "stop", "cancel", "resume",
           "is_alive", "parse_gpus", "processes", "engine_command", "child_env", "has_started", "read_launch",
           "write_launch"]

# The folder that holds the `engine` package, found without importing it (that would load nothing
# heavy today, but the child must find it whatever our cwd is).
ENGINE_ROOT = Path(importlib.util.find_spec("engine").origin).resolve().parents[1]
RESUMABLE = ("stopped", "failed", "lost")
TORCHRUN = ["-m", "torch.distributed.run", "--standalone"]


@dataclass
class RunHandle:
    """A created run: its id, its dir and the validated config written there."""

    run_id: str
    run_dir: Path
    config: Config


def child_env(**extra: str) -> dict[str, str]:
    """Our environment plus ``extra``, with the folder holding ``engine`` first on PYTHONPATH: the
    processes we start (engines, the queue's scheduler, the benchmark) find it whatever their cwd."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ENGINE_ROOT), env.get("PYTHONPATH")]))
    return env


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


def prepare(preset_or_file: str, overrides: Sequence[str] = (), name: str | None = None,
            here: bool = True) -> Config:
    """The validated config of a new run, its dataset root and task plan checked (:func:`preflight`).
    ``here``: it runs on this machine, so its device is checked too (not for a Slurm job's node).
    Raises :class:`ConfigError` (a :class:`DatasetError` shows the expected layout) for any mistake."""
    cfg = config.load(preset_or_file, list(overrides))
    if name:
        cfg.name = name
    if cfg.data.root:
        # The engine runs elsewhere and may be resumed from anywhere: pin the user's relative path now.
        cfg.data.root = str(Path(cfg.data.root).expanduser().resolve())
    from engine.model.weights import is_file_value

    if cfg.model.pretrained and is_file_value(cfg.model.pretrained) and Path(cfg.model.pretrained).expanduser().exists():
        # the engine runs in the run dir: a checkpoint path relative to here would not be found there
        cfg.model.pretrained = str(Path(cfg.model.pretrained).expanduser().resolve())
    preflight(cfg, here)
    return cfg


def preflight(cfg: Config, here: bool = True) -> None:
    """Check, without decoding or rendering an image, that the dataset is where the config says, that
    the task plan fits it (class order, number of tasks) and that the weights can be had (torch loads
    only to look up a hub tag). Raises what the engine would raise minutes later, after the run dir exists."""
    from engine.data.registry import class_count  # numpy and PIL at most: imported here, not with the CLI
    from engine.data.scenario import build_plan

    build_plan(cfg.scenario, [f"class {i}" for i in range(class_count(cfg.data))])
    if here:
        _check_device(cfg.train.device)
    problem = weights_problem(cfg.model)
    if problem:
        raise ConfigError(problem)


def _check_device(device: str) -> None:
    """A CUDA device the engine would not find (it asks torch; here, without torch, what
    ``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi`` show)."""
    if not device.startswith("cuda"):
        return
    from seca_tui.queue import visible_devices  # the queue imports this module

    visible = [d for d in visible_devices() if d != "cpu"]
    if not visible:
        raise ConfigError(f"Config key 'train.device' is '{device}', but no CUDA device is available here.")
    index = device.partition(":")[2]
    if index.isdigit() and int(index) >= len(visible):
        raise ConfigError(f"Config key 'train.device' is '{device}', but only {len(visible)} CUDA device(s) "
                          f"are visible here ({', '.join(visible)}).")


def weights_problem(model: config.ModelConfig) -> str | None:
    """Why the model's weights cannot be had here (one sentence), or None: random weights need none and
    a local file that exists is enough; a hub tag (cached, or a reachable hub) and a missing file go
    through the engine's own check, which imports open_clip, so only they pay for it."""
    from engine.model import weights

    pretrained = weights.resolve_pretrained(model.pretrained)
    if pretrained is None or (weights.is_file_value(pretrained) and Path(pretrained).is_file()):
        return None
    return weights.weights_available(model)


def create_run(preset_or_file: str, overrides: Sequence[str] = (), name: str | None = None,
               home: Path | None = None, gpus: int | list[int] | None = None,
               store: Store | None = None, cfg: Config | None = None, queued: bool = False,
               tags: Sequence[str] = (), extra: dict | None = None) -> RunHandle:
    """Validate the config (or take ``cfg`` from :func:`prepare`), make ``<home>/runs/<run_id>/`` with
    ``config.yaml`` and ``launch.json``, and record the run as queued (``queued``: submitted to the run
    queue, which starts it when a device is free). ``tags`` and ``extra`` (e.g. a sweep's grid values)
    go into ``launch.json`` too, so a rebuilt run log keeps them. Raises :class:`ConfigError` for any user mistake;
    a failure part-way (a full disk) removes the run dir, so nothing half-made is left."""
    cfg = cfg or prepare(preset_or_file, overrides, name)
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
    try:
        _write_atomic(run_dir / "config.yaml", config.dump(cfg))
        now = time.time()
        write_launch(run_dir, {
            "run_id": run_dir.name, "name": cfg.name, "preset": preset_or_file, "overrides": list(overrides),
            "gpus": gpus, "host": HOST, "created": now, **({"tags": list(tags)} if tags else {}), **(extra or {}),
        })
        store.register(run_dir, **({"queued_at": now} if queued else {}))
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return RunHandle(run_dir.name, run_dir.resolve(), cfg)


def processes(gpus: int | list | None, devices: list[str] | None = None) -> int:
    """How many engine processes a run gets: one per device it holds, else one per GPU asked for."""
    if devices:
        return len(devices)
    if isinstance(gpus, list):
        return len(gpus)
    return gpus if isinstance(gpus, int) and gpus > 0 else 1


def engine_command(run_dir: Path, resume: bool = False, nproc: int = 1) -> list[str]:
    """The engine's command line for a run dir (its resolved ``config.yaml``); through torchrun with
    ``nproc`` processes when that is more than one."""
    engine = ["-m", "engine", "run", str(run_dir / "config.yaml"), "--run-dir", str(run_dir)]
    engine += ["--resume"] if resume else []
    if nproc > 1:
        return [sys.executable, *TORCHRUN, "--nproc_per_node", str(nproc), *engine]
    return [sys.executable, *engine]


def spawn(run_dir: str | Path, resume: bool = False, command: Sequence[str] | None = None,
          devices: list[str] | None = None) -> tuple[int, list[str] | None]:
    """Start the engine on ``run_dir`` detached and record it in ``launch.json``; the store is not
    touched (the queue calls this inside its own transaction). ``devices``: what the queue gave the
    run (``None``: what ``launch.json`` says, i.e. the devices of its first start or its ``--gpus``
    list). Returns the pid and the devices the run holds."""
    run_dir = Path(run_dir).resolve()
    launch = read_launch(run_dir)
    gpus = launch.get("gpus")
    if devices is None:
        devices = launch.get("devices") or ([str(g) for g in gpus] if isinstance(gpus, list) else None)
    nproc = processes(gpus, devices)
    if command is None:  # looked up now, so tests may swap in a fake engine
        command = engine_command(run_dir, resume) if nproc == 1 else engine_command(run_dir, resume, nproc)
    argv = list(command)
    env = child_env()
    if devices and devices != ["cpu"]:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    with open(run_dir / "engine.log", "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=run_dir, env=env,
        )
    # Reap it when it exits, so it never lingers as a zombie that a pid check would call alive.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    launch.update({"pid": proc.pid, "host": HOST, "argv": argv, "python": sys.executable, "started": time.time(),
                   "devices": devices, "processes": nproc})
    write_launch(run_dir, launch)
    return proc.pid, devices


def start(run_dir: str | Path, resume: bool = False, store: Store | None = None,
          command: Sequence[str] | None = None) -> int:
    """Start the engine on ``run_dir`` detached; returns its pid. ``command`` replaces the engine's
    command line (tests run a small script through this same path)."""
    run_dir = Path(run_dir).resolve()
    store = store or Store(run_dir.parents[1] / "runs.db")
    pid, devices = spawn(run_dir, resume, command)
    if devices is None:  # started without the queue: record what it holds, so the queue counts it
        from seca_tui import queue  # imports this module

        train = ((store.run(run_dir.name) or {}).get("config") or {}).get("train") or {}
        devices = queue.held_devices(str(train.get("device") or "auto"), read_launch(run_dir).get("gpus"))
    store.register(run_dir, status="running", pid=pid, host=HOST, finished=None, error=None,
                   stop_requested=None, device=",".join(devices) if devices else None)
    return pid


def stop(run_id: str, store: Store | None = None) -> str:
    """Ask a running run to stop gracefully (SIGTERM to its process group: every torchrun rank finishes
    the same step and rank 0 writes ``run_stopped``); a queued run is cancelled instead. Returns
    ``"stopping"`` or ``"cancelled"``."""
    store = store or Store.open()
    run = store.run(run_id)
    if run is None:
        raise ConfigError(f"No run '{run_id}'.")
    if run["status"] not in ACTIVE:
        raise ConfigError(f"Run {run_id} is {run['status']}, so there is nothing to stop.")
    if run["slurm_job"]:  # its job's owner signals it, wherever it runs
        return slurm.stop(run, store)
    if run["status"] == "queued" and not run["pid"]:
        cancel(run_id, store)
        return "cancelled"
    alive = is_alive(run["pid"], run["host"], run["run_dir"])
    if alive is None:
        raise ConfigError(f"Run {run_id} runs on host {run['host']}; stop it from there.")
    # the recorded process, else whatever still runs in the run dir (ranks whose torchrun agent died)
    targets = [run["pid"]] if alive else run_processes(run["run_dir"])
    if not targets:
        store.mark_lost()
        raise ConfigError(f"Run {run_id} has no live process any more; it is marked lost.")
    store.update_run(run_id, stop_requested=time.time())
    for pid in targets:
        try:
            signal_run(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it ended just now; its final event (or the lost check) tells how
    return "stopping"


def signal_run(pid: int, sig: int) -> None:
    """Send ``sig`` to a run: to its whole process group when it leads one (every run we start does;
    torchrun's agent and its ranks are one group), else to the process alone (a run started by hand,
    whose group may hold its shell)."""
    if os.getpgid(pid) == pid:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)


def cancel(run_id: str, store: Store | None = None) -> None:
    """Take a queued run out of the queue (status ``cancelled``); its run dir stays for the record.
    Checked and changed in one write transaction, so it cannot race a scheduler starting it."""
    store = store or Store.open()
    run = store.run(run_id)
    if run and run["slurm_job"] and run["status"] == "queued":
        return slurm.cancel(run, store)
    with store.transaction() as db:
        row = db.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise ConfigError(f"No run '{run_id}'.")
        if row[0] != "queued":
            hint = "; `seca-tui stop` stops a running one" if row[0] == "running" else ""
            raise ConfigError(f"Run {run_id} is {row[0]}, and only a queued run can be cancelled{hint}.")
        db.execute("UPDATE runs SET status = 'cancelled', finished = ? WHERE run_id = ?", [time.time(), run_id])


def resume(run_id: str, store: Store | None = None, command: Sequence[str] | None = None,
           queued: bool = False, slurm_given: dict | None = None) -> int | None:
    """Restart a stopped, failed or lost run where its last checkpoint left it; returns the pid. A run
    that never started (created, or cancelled from the queue) starts from the beginning. ``queued``:
    put it in the run queue instead, which resumes it when a device is free (returns ``None``). A run
    submitted to Slurm, or any run with ``slurm_given`` (Slurm options over its last ones), is submitted
    to Slurm (returns ``None``)."""
    store = store or Store.open()
    run = store.run(run_id)
    if run is None:
        raise ConfigError(f"No run '{run_id}'.")
    store.ingest(run["run_dir"])  # a final event not yet read would change the answer
    store.mark_lost()
    run = store.run(run_id)
    status = run["status"]
    if status == "queued" and run["queued_at"]:
        raise ConfigError(f"Run {run_id} is queued and starts when a device is free; `seca-tui cancel` drops it.")
    if status not in (*RESUMABLE, "queued", "cancelled"):
        hint = "stop it first" if status == "running" else "there is nothing left to run"
        raise ConfigError(f"Run {run_id} is {status}; {hint}.")
    leftovers = run_processes(run["run_dir"])
    if leftovers:  # two engines writing one events.jsonl would garble the run's history
        pids = " ".join(map(str, leftovers))
        raise ConfigError(f"Run {run_id} still has engine processes ({pids}); end them first (kill {pids}).")
    if run["slurm_job"] or slurm_given is not None:
        slurm.resubmit(run, store, slurm_given)
        return None
    if queued:  # the queue resumes what has run before (see :func:`has_started`) on the devices it frees
        store.update_run(run_id, status="queued", queued_at=time.time(), device=None, finished=None, error=None,
                         stop_requested=None)
        return None
    return start(run["run_dir"], resume=has_started(Path(run["run_dir"])), store=store, command=command)


def has_started(run_dir: Path) -> bool:
    """Whether an engine has written to ``run_dir`` (launched by us or by hand), so that a new start
    continues its history after its checkpoints rather than beginning it again."""
    return (Path(run_dir) / "events.jsonl").exists()


def read_launch(run_dir: Path) -> dict:
    """``launch.json`` of a run dir (``{}`` when missing or damaged)."""
    try:
        return json.loads((run_dir / "launch.json").read_text())
    except (OSError, ValueError):
        return {}


def write_launch(run_dir: Path, launch: dict) -> None:
    _write_atomic(run_dir / "launch.json", json.dumps(launch, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Readers (another process ingesting) see the old file or the new one, never half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
