"""A screen's own thread for the run store: it runs queued jobs, then polls, then sleeps until woken.

SQLite reads and ingest block (a busy timeout can wait seconds under a concurrent writer), so they never
run on the UI thread. One thread per screen keeps jobs and polls in order: a tag edit submitted before a
refresh is visible in that refresh. Results go back to the UI as messages posted by the poll function.
:class:`StoreScreen` ties such a thread to a screen's life, from mount to unmount.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.screen import Screen

from seca_tui.messages import StoreFailed
from seca_tui.screens.confirm import ConfirmScreen
from seca_tui.store import Store

Job = Callable[[Store], object]


class StoreWorker:
    """Start with :meth:`start` from a mounted screen; the thread ends with the screen."""

    def __init__(self, screen: Screen, home: Path | None, poll: Job, interval: float) -> None:
        self.screen, self.home, self.poll, self.interval = screen, home, poll, interval
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._last_error = ""  # a failure that repeats every poll is reported once

    def start(self) -> None:
        self.screen.run_worker(self._run, thread=True, group="store", name=f"store:{type(self.screen).__name__}")

    def submit(self, job: Job) -> None:
        """Run ``job(store)`` on the store thread before its next poll."""
        self._jobs.put(job)
        self.wake()

    def wake(self) -> None:
        """Poll now rather than at the end of the interval (the filter changed, a job arrived)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _run(self) -> None:
        store = Store.open(self.home)
        try:
            while not self._stopped.is_set():
                self._wake.clear()
                self._guarded(self._drain, store)
                if self._guarded(self.poll, store):
                    self._last_error = ""
                self._wake.wait(self.interval)
        finally:
            store.close()

    def _drain(self, store: Store) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job(store)

    def _guarded(self, job: Job, store: Store) -> bool:
        """A failing poll or job (database locked past the timeout, a bad run dir) is reported, not fatal:
        the next round tries again. True when ``job`` succeeded."""
        try:
            job(store)
            return True
        except Exception as error:  # noqa: BLE001 - any failure is shown to the user, the loop goes on
            text = f"{type(error).__name__}: {error}"
            if text != self._last_error:
                self._last_error = text
                self.screen.post_message(StoreFailed(text))
            return False


class StoreScreen(Screen):
    """A screen fed by its own :class:`StoreWorker`: ``_poll(store)`` every ``POLL_SECONDS`` from mount
    to unmount, and ``self._worker`` to submit jobs to or wake."""

    POLL_SECONDS: ClassVar[float] = 2.0
    _worker: StoreWorker | None = None  # None until mounted

    def _poll(self, store: Store) -> None:
        raise NotImplementedError

    # decorated, so that a subclass's own on_mount / on_unmount run as well (subclass first)
    @on(events.Mount)
    def _start_store_worker(self) -> None:
        self._worker = StoreWorker(self, self.app.home, self._poll, self.POLL_SECONDS)
        self._worker.start()

    @on(events.Unmount)
    def _stop_store_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def act_once_confirmed(self, question: str, act: Callable[[Store], None], done: str) -> None:
        """Ask ``question``; on yes, run ``act`` on this screen's store thread and say ``done``, or
        the one sentence of the ConfigError by which it refused (the run changed meanwhile)."""
        from engine.config import ConfigError

        def job(store: Store) -> None:
            try:
                act(store)
            except ConfigError as error:
                self.app.call_from_thread(self.notify, str(error), severity="warning")
                return
            self.app.call_from_thread(self.notify, done)

        def confirmed(yes: bool | None) -> None:
            if yes and self._worker is not None:
                self._worker.submit(job)

        self.app.push_screen(ConfirmScreen(question), confirmed)
