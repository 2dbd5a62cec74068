"""The run queue: runs submitted together wait for a free device and start on it.

A queued run (status ``queued`` with ``queued_at`` set) starts when enough devices have a free
slot: each device takes up to ``queue.per_gpu`` runs at once (a home-wide setting, default 1). The
devices are ``SECA_TUI_GPUS`` ("0,1"), else ``CUDA_VISIBLE_DEVICES``, else what ``nvidia-smi -L``
lists (MIG instances by UUID), else one CPU "device". A run started on devices ``0,1`` gets
``CUDA_VISIBLE_DEVICES=0,1`` and one process per device (torchrun when more than one).

:func:`schedule` is the whole scheduler: any seca-tui process may call it at any time (the CLI on
submit and on each command, ``seca-tui queue``, the TUI's refresh worker). It claims and starts runs
inside one ``BEGIN IMMEDIATE`` transaction, so two schedulers never start the same run, and never
fill one slot twice. Runs are started in the order they were queued; the first run that cannot
start holds back the ones after it, so a run that needs two GPUs is not starved by one-GPU runs.
Queues are per host: a scheduler starts only runs queued on its host, and counts only the runs
that hold devices there. A run started without the queue holds devices too (:func:`held_devices`,
recorded when it starts), so the queue never puts a second run on a GPU a direct run uses.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

from engine import paths
from engine.config import ConfigError
from seca_tui import launcher
from seca_tui.process import HOST, is_alive
from seca_tui.store import FINAL, Store

__all__ = ["devices", "visible_devices", "held_devices", "per_gpu", "set_per_gpu", "submit", "resume", "schedule", "pending", "serve",
           "ensure_scheduler", "check_fits"]

PER_GPU = "queue.per_gpu"
POLL_S = 1.0
DEVICE_CACHE_S = 60.0
RECENT_S = 3600.0  # a run that ended within this long may still be exiting: its pid is checked
_cache: dict[str, tuple[float, list[str]]] = {}


# ----------------------------------------------------------------------------------------- devices

def devices() -> list[str]:
    """The devices the queue hands out, as ``CUDA_VISIBLE_DEVICES`` entries; ``["cpu"]`` without GPUs."""
    text = os.environ.get("SECA_TUI_GPUS", "").strip()
    if text:
        return [d.strip() for d in text.split(",") if d.strip()]
    return visible_devices()


def visible_devices() -> list[str]:
    """The GPUs a process started here sees, in CUDA's order: ``CUDA_VISIBLE_DEVICES``, else what
    ``nvidia-smi -L`` lists; ``["cpu"]`` without GPUs."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if text:
        found = [d.strip() for d in text.split(",") if d.strip()]
        return ["cpu"] if found[0].startswith("-") else found  # CUDA_VISIBLE_DEVICES=-1 hides every GPU
    cached = _cache.get("nvidia-smi")
    if cached and time.monotonic() - cached[0] < DEVICE_CACHE_S:
        return list(cached[1])
    found = parse_nvidia_smi(_nvidia_smi()) or ["cpu"]
    _cache["nvidia-smi"] = (time.monotonic(), found)
    return list(found)


def _nvidia_smi() -> str:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def parse_nvidia_smi(text: str) -> list[str]:
    """GPU indices from ``nvidia-smi -L``; a GPU split into MIG instances gives their UUIDs instead,
    the only way CUDA_VISIBLE_DEVICES can name one."""
    found: list[str] = []
    gpu, migs = None, []
    for line in text.splitlines():
        top = re.match(r"GPU (\d+):", line)
        if top:
            found += migs or ([gpu] if gpu is not None else [])
            gpu, migs = top.group(1), []
            continue
        mig = re.search(r"\(UUID: (MIG-[^)\s]+)\)", line)
        if mig and gpu is not None:
            migs.append(mig.group(1))
    found += migs or ([gpu] if gpu is not None else [])
    return found


def per_gpu(store: Store) -> int:
    """How many runs one device takes at once (``seca-tui queue --per-gpu N``; default 1)."""
    value = store.setting(PER_GPU, 1)
    return value if isinstance(value, int) and value >= 1 else 1


def set_per_gpu(store: Store, value: int) -> None:
    if value < 1:
        raise ConfigError("--per-gpu needs at least 1 run per device.")
    store.set_setting(PER_GPU, value)


def held_devices(train_device: str, gpus: int | list[int] | None) -> list[str]:
    """The devices a run started without the queue holds, in the queue's terms: the CPU "device" for a
    CPU run (or on a machine without GPUs), the listed GPUs of ``--gpus 0,1``, the GPU that
    ``train.device=cuda:K`` names, else the first visible GPU per process (what CUDA gives a process
    that does not choose)."""
    visible = visible_devices()
    if train_device == "cpu" or visible == ["cpu"]:
        return ["cpu"]
    if isinstance(gpus, list):
        return [str(g) for g in gpus]
    named = re.fullmatch(r"cuda:(\d+)", train_device)
    if named:
        return visible[int(named.group(1)):][:1]
    return visible[: launcher.processes(gpus)]


# ----------------------------------------------------------------------------------------- submit

def check_fits(gpus: int | list[int] | None, available: list[str]) -> None:
    """Refuse a run the queue could never start here (more devices than exist, or unknown ones)."""
    if isinstance(gpus, list):
        unknown = [str(g) for g in gpus if str(g) not in available]
        if unknown:
            raise ConfigError(f"--gpus names device(s) {', '.join(unknown)}, but the queue's devices here are "
                              f"{', '.join(available)} (set SECA_TUI_GPUS to change them).")
    elif launcher.processes(gpus) > len(available):
        raise ConfigError(f"--gpus {gpus} needs {gpus} devices, but the queue has {len(available)} here "
                          f"({', '.join(available)}).")


def submit(store: Store, run_id: str) -> None:
    """Put a created run into the queue (it is ``queued`` already; this stamps ``queued_at``)."""
    store.update_run(run_id, status="queued", queued_at=time.time())


def resume(store: Store, run_id: str) -> list[str] | None:
    """``resume --queue``: put a stopped, failed or lost run back in the queue and give the queue a
    turn; returns the devices it was resumed on now, or ``None`` while it waits (a background
    scheduler then resumes it when a device frees up)."""
    check_fits(store.run(run_id)["gpus"], devices())
    launcher.resume(run_id, store, queued=True)
    started = dict(schedule(store))
    if pending(store):
        ensure_scheduler()
    return started.get(run_id)


def pending(store: Store) -> int:
    """How many runs wait in this host's queue (one read, no lock)."""
    return store.db.execute("SELECT count(*) FROM runs WHERE status = 'queued' AND queued_at IS NOT NULL "
                            "AND host = ?", [HOST]).fetchone()[0]


# ----------------------------------------------------------------------------------------- schedule

def schedule(store: Store, available: list[str] | None = None, limit: int | None = None) -> list[tuple[str, list[str]]]:
    """Start every queued run that fits now, oldest first; returns ``(run_id, devices)`` of each.

    Cheap when nothing is queued (one read, no write lock), so a UI may call it on every refresh.
    """
    if not pending(store):
        return []
    store.mark_lost()  # a run whose process died frees its devices
    available = available or devices()
    limit = limit or per_gpu(store)
    started = []
    now = time.time()
    with store.transaction() as db:
        load = _load(db, available, now)
        queued = db.execute("SELECT run_id, run_dir, gpus FROM runs WHERE status = 'queued' AND queued_at IS NOT NULL "
                            "AND host = ? ORDER BY queued_at, run_id", [HOST]).fetchall()
        for run_id, run_dir, gpus_text in queued:
            gpus = _loads(gpus_text)
            chosen = _choose(gpus, available, load, limit)
            if chosen is None:
                break  # first in, first out: later runs wait behind this one
            fields = _start(Path(run_dir), chosen)
            db["runs"].update(run_id, fields)
            if fields["status"] == "running":
                for d in chosen:
                    load[d] += 1
                started.append((run_id, chosen))
    return started


def _loads(text: str | None):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _load(db, available: list[str], now: float) -> dict[str, int]:
    """Runs holding each device on this host: running ones, and ended ones whose process still exits."""
    load = {d: 0 for d in available}
    rows = db.execute(
        "SELECT device, status, pid, run_dir FROM runs WHERE device IS NOT NULL AND host = ? "
        f"AND (status = 'running' OR (status IN ({', '.join('?' for _ in FINAL)}) AND coalesce(finished, 0) > ?))",
        [HOST, *FINAL, now - RECENT_S]).fetchall()
    for device, status, pid, run_dir in rows:
        if status == "running" or is_alive(pid, HOST, run_dir):
            for d in device.split(","):
                if d in load:
                    load[d] += 1
    return load


def _choose(gpus, available: list[str], load: dict[str, int], limit: int) -> list[str] | None:
    """The devices a run gets now, or ``None`` when they are not free."""
    if isinstance(gpus, list):  # named devices: exactly those
        wanted = [str(g) for g in gpus]
        return wanted if all(load.get(d, limit) < limit for d in wanted) else None
    free = sorted((d for d in available if load[d] < limit), key=lambda d: (load[d], available.index(d)))
    need = launcher.processes(gpus)
    return sorted(free[:need], key=available.index) if len(free) >= need else None


def _start(run_dir: Path, chosen: list[str]) -> dict:
    """Start a claimed run (resume it, when it ran before: ``seca-tui resume --queue``); the fields that
    record it. A run whose launch.json already names a live engine (a scheduler that started it died
    before its commit) is recorded, not started twice."""
    launch = launcher.read_launch(run_dir)
    if launch.get("pid") and launch.get("host") == HOST and is_alive(launch["pid"], HOST, run_dir):
        chosen = launch.get("devices") or chosen
        pid = launch["pid"]
    else:
        try:
            pid, _ = launcher.spawn(run_dir, resume=launcher.has_started(run_dir), devices=chosen)
        except OSError as e:  # the interpreter vanished, the run dir is unwritable: say so on the run
            return {"status": "failed", "error": f"The queue could not start the engine: {e}.", "finished": time.time()}
    return {"status": "running", "pid": pid, "host": HOST, "device": ",".join(chosen), "finished": None,
            "error": None, "stop_requested": None}


# ----------------------------------------------------------------------------------------- serve

def serve(store: Store, poll: float = POLL_S, out: TextIO | None = None, lock: Path | None = None,
          sleep: Callable[[float], None] = time.sleep) -> None:
    """Start queued runs as devices free up, until none is left queued here. With ``lock`` (the
    background scheduler), hold that file's lock meanwhile and give it up before the last look, so a
    run submitted as this one exits is picked up by it or by the next background scheduler."""
    out = out or sys.stdout
    held = _try_lock(lock) if lock else None
    if lock and held is None:
        return  # another background scheduler is at work
    try:
        while True:
            for run_id, chosen in schedule(store):
                out.write(f"{time.strftime('%H:%M:%S')} started {run_id} on {','.join(chosen)}\n")
                out.flush()
            if pending(store):
                sleep(poll)
                continue
            if held is None:
                return
            os.close(held)
            held = None
            if not pending(store) or (held := _try_lock(lock)) is None:
                return
    finally:
        if held is not None:
            os.close(held)


def _try_lock(path: Path) -> int | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def lock_path(home: Path | None = None) -> Path:
    return Path(home or paths.home()) / "queue.lock"


def ensure_scheduler(home: Path | None = None, poll: float = POLL_S) -> bool:
    """Make sure a background scheduler serves this home's queue; returns whether one was started.

    It is ``seca-tui queue --background``, detached like an engine (own session, output appended to
    ``<home>/queue.log``), and exits once nothing is queued.
    """
    home = Path(home or paths.home())
    probe = _try_lock(lock_path(home))
    if probe is None:
        return False  # one is running
    os.close(probe)
    env = launcher.child_env(SECA_TUI_HOME=str(home))
    with open(home / "queue.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "seca_tui", "queue", "--background", "--poll", str(poll)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env, cwd=home)
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return True
