"""A torchrun rank stops with its agent.

torchrun's agent starts one process per rank and gathers them; if the agent itself is killed (the
OOM killer, ``kill -9``), the ranks are orphaned and would train on to the end, holding their GPUs,
unseen by any stop. On Linux each rank asks the kernel for a signal of its own when its parent exits
(``prctl(PR_SET_PDEATHSIG)``; SIGUSR1, so the log can say why): the engine then stops as on SIGTERM,
every rank at the same step, after the last task checkpoint, and the run can be resumed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
AGENT_GONE = signal.SIGUSR1


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def signal_on_parent_exit(parent: int, sig: int) -> bool:
    """Have ``sig`` sent to this process when its parent (pid ``parent``, read before this call) exits;
    sent at once if it has gone already. Returns whether the kernel took the request (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    args = (ctypes.c_ulong(int(sig)), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))  # unsigned longs
    if libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), *args) != 0:
        return False
    if os.getppid() != parent:  # it exited before the request took effect: nobody will send it
        os.kill(os.getpid(), sig)
    return True
