"""The engine's only channel out: ``RUN_DIR/events.jsonl`` (schema v1, ../shared/design.md).

One JSON object per line, written whole and flushed per line, fsynced at task boundaries, never
rewritten. ``seq`` continues across ``--resume``. Safe to call from the heartbeat thread.

Besides design.md's table: ``phase`` (fields ``phase``: data, model, task or eval; ``message``: what runs,
for people, tasks numbered from 1; ``task``: 0-based, with task and eval) marks the long stretches without
other events, so the first events of a run come before ``run_started``.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

SCHEMA_VERSION = 1


def _last_seq(path: Path) -> int:
    """The seq of the last complete line, or -1; a half-written tail (a crash) is cut off."""
    if not path.exists():
        return -1
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # the writer died mid-line: drop the fragment so the next line stays valid
        with open(path, "r+b") as f:
            f.truncate(end)
    for line in reversed(data[:end].splitlines()):
        try:
            return int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return -1


def _clean(value):
    """JSON has no NaN/inf: write them as null so every reader can parse the line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class EventWriter:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._seq = _last_seq(self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.last_write = time.time()

    def emit(self, type: str, **fields) -> dict:
        with self._lock:
            self._seq += 1
            event = {"v": SCHEMA_VERSION, "seq": self._seq, "ts": round(time.time(), 3), "type": type}
            event.update(_clean(fields))
            self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
            self._file.flush()
            self.last_write = time.time()
            return event

    def sync(self) -> None:
        """fsync: called at task boundaries so a finished task survives a power cut."""
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


class NullEvents:
    """The events of a data-parallel rank other than 0: rank 0 alone writes the run's history."""

    last_write = float("inf")  # never due a heartbeat

    def emit(self, type: str, **fields) -> dict:
        return {"type": type, **fields}

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class Heartbeat(threading.Thread):
    """Emits `heartbeat` when nothing else was written for ``interval`` seconds (pid + age = alive)."""

    def __init__(self, writer: EventWriter, interval: float):
        super().__init__(daemon=True, name="heartbeat")
        self.writer, self.interval = writer, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval / 4):
            if time.time() - self.writer.last_write >= self.interval:
                self.writer.emit("heartbeat")

    def stop(self) -> None:
        self._stop_event.set()
