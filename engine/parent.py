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


class AgentWatch:
    """Polls, from a daemon thread, whether this process's parent is still ``agent`` (its pid, read
    before anything could have delayed the watch); once it is not, sets ``stop``, and ends the process
    ``grace`` seconds later if it is still running."""

    def __init__(self, agent: int, stop: threading.Event, grace: float) -> None:
        self.agent, self.stop, self.grace = agent, stop, grace
        self._gone = False
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="agent-watch", daemon=True).start()

    def gone(self) -> bool:
        """Whether the agent has gone; the first call to find it gone says so in the log and sets ``stop``.
        Called once more as the rank ends: a rank stopped by another rank's vote, before its own poll
        came round, still logs why."""
        with self._lock:
            if not self._gone and os.getppid() != self.agent:
                self._gone = True
                print(f"The torchrun agent (pid {self.agent}) has gone; stopping after the current step.",
                      file=sys.stderr, flush=True)
                self.stop.set()
            return self._gone

    def _watch(self) -> None:
        while not self.gone():
            time.sleep(POLL_SECONDS)
        time.sleep(self.grace)
        print("Where each thread of this rank was:", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        # the last line of the log is what the runs browser shows as the reason
        print(f"This rank was still running {self.grace:g} s after the torchrun agent (pid {self.agent}) went, "
              "stuck (in a collective whose peer went too?); ended it. Resume the run from its last checkpoint.",
              file=sys.stderr, flush=True)
        os._exit(1)
