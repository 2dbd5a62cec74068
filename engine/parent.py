"""A torchrun rank stops with its agent.

torchrun's agent starts one process per rank and gathers them; if the agent itself is killed (the
OOM killer, ``kill -9``), the ranks are orphaned and would train on to the end, holding their GPUs,
unseen by any stop. Each rank therefore watches its parent from a thread: once the agent has gone,
the engine stops as on SIGTERM (every rank at the same step, after the last task checkpoint; the run
can be resumed). A rank that cannot reach that step, blocked in a collective whose peer went with the
agent, would hold its GPU until the collective's timeout (10–30 minutes): after ``grace`` seconds the
watcher writes every thread's stack to the log, so the log shows where it was stuck, and ends it.

A thread that polls, not the kernel's parent-death signal: the signal is tied to the thread of the
agent that started the rank, and its handler may not write to the log it interrupts.
"""
from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time

POLL_SECONDS = 0.5


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def watch_agent(agent: int, stop: threading.Event, grace: float) -> threading.Thread:
    """Start a daemon thread that sets ``stop`` once this process's parent is no longer ``agent``
    (read before anything could have delayed this call), and ends the process ``grace`` seconds
    later if it is still running."""
    def watch() -> None:
        while os.getppid() == agent:
            time.sleep(POLL_SECONDS)
        print(f"The torchrun agent (pid {agent}) has gone; stopping after the current step.", file=sys.stderr,
              flush=True)
        stop.set()
        time.sleep(grace)
        print("Where each thread of this rank was:", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        # the last line of the log is what the runs browser shows as the reason
        print(f"This rank was still running {grace:g} s after the torchrun agent (pid {agent}) went, stuck "
              "(in a collective whose peer went too?); ended it. Resume the run from its last checkpoint.",
              file=sys.stderr, flush=True)
        os._exit(1)

    thread = threading.Thread(target=watch, name="agent-watch", daemon=True)
    thread.start()
    return thread
