"""Is a run's engine process still there? Honest answers despite zombies and reused pids."""
from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname()


def is_alive(pid: int | None, host: str | None, run_dir: str | Path | None = None) -> bool | None:
    """Whether process ``pid`` on ``host`` is running; ``None`` when it cannot be told from here.

    On this host a zombie counts as gone (it has exited, only its parent has not reaped it yet), and
    when ``run_dir`` is given a live pid whose command line does not name the run dir is a reused
    pid, so gone too. Another host's processes cannot be seen: the caller decides by heartbeat age.
    """
    if not pid:
        return False
    if host and host != HOST:
        return None
    proc = Path("/proc") / str(pid)
    if not proc.exists():
        if Path("/proc/self").exists():
            return False
        return _signal_zero(pid)  # no procfs (macOS): existence is all we can know
    try:
        # The state follows the parenthesised command name, which may itself hold spaces or ')'.
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False  # it exited between the checks
    if state in ("Z", "X"):
        return False
    return run_dir is None or str(run_dir) in cmdline


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    return True


def run_processes(run_dir: str | Path) -> list[int]:
    """Live processes on this host whose command line names ``run_dir`` as an argument: the engine,
    or the ranks of a torchrun whose agent (the pid we recorded) has died. Empty without procfs."""
    target = str(run_dir)
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if target not in arguments(int(proc.name)):
            continue
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # it exited meanwhile
        if state not in ("Z", "X") and int(proc.name) != os.getpid():
            found.append(int(proc.name))
    return sorted(found)


def arguments(pid: int) -> list[str]:
    """The command line of process ``pid`` on this host, one item per argument; empty when it is gone
    (or there is no procfs)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
