"""From a run dir's ``events.jsonl`` to rows: reading new lines from a byte offset, and one handler
per event type that turns an event into rows of the run log.

Reading is separated from writing so the store can do both inside one ``BEGIN IMMEDIATE``
transaction: the offset is read and advanced under the write lock, so two processes ingesting the
same run never apply a line twice, and a crash between the two leaves nothing half-applied.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlite_utils import Database

from seca_tui import metrics

SCHEMA_VERSION = 1  # the newest events.jsonl schema this module understands
TERMINAL = {"run_finished": "finished", "run_failed": "failed", "run_stopped": "stopped"}


@dataclass
class IngestReport:
    """What one ``ingest`` call did. Line numbers are 1-based, counted from the file's start."""

    new_events: int = 0
    bad_lines: list[int] = field(default_factory=list)  # complete lines that are not events
    newer_lines: list[int] = field(default_factory=list)  # events with v > SCHEMA_VERSION, kept raw

    def __bool__(self) -> bool:
        return bool(self.new_events or self.bad_lines or self.newer_lines)


@dataclass
class Chunk:
    """Complete lines read past an offset, parsed; ``offset``/``lines`` are where the next read starts."""

    events: list[dict]
    offset: int
    lines: int
    bad_lines: list[int]
    newer_lines: list[int]


def read_new(path: Path, offset: int, lines: int) -> Chunk:
    """Parse the complete lines of ``path`` after byte ``offset`` (line ``lines`` was the last read).

    A last line without its newline is still being written: it is left for the next read. A
    complete line that is not a JSON object with int ``v``/``seq`` and a str ``type`` is skipped
    and reported by line number.
    """
    chunk = Chunk([], offset, lines, [], [])
    try:
        with open(path, "rb") as f:
            if f.seek(0, 2) < offset:  # the file was replaced by a shorter one: read it anew
                chunk.offset = chunk.lines = offset = lines = 0
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return chunk
    end = data.rfind(b"\n") + 1
    for number, raw in enumerate(data[:end].splitlines(), start=lines + 1):
        event = _parse(raw)
        if event is None:
            chunk.bad_lines.append(number)
            continue
        if event["v"] > SCHEMA_VERSION:
            chunk.newer_lines.append(number)
        chunk.events.append(event)
    chunk.offset = offset + end
    chunk.lines = lines + data[:end].count(b"\n")
    return chunk


def _parse(raw: bytes) -> dict | None:
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    ok = all(isinstance(event.get(k), int) and not isinstance(event.get(k), bool) for k in ("v", "seq"))
    if not ok or not isinstance(event.get("type"), str):
        return None
    event.setdefault("ts", None)
    return event


# ----------------------------------------------------------------------------------------- apply


def apply(db: Database, run_id: str, event: dict) -> None:
    """Write the rows an event implies; the caller has inserted it into ``events`` already.

    Events of a newer schema are only kept raw: their fields may mean something else.
    """
    if event["v"] > SCHEMA_VERSION:
        return
    if isinstance(event["ts"], (int, float)):
        db.execute(
            "UPDATE runs SET heartbeat_ts = max(coalesce(heartbeat_ts, 0), ?) WHERE run_id = ?",
            [event["ts"], run_id],
        )
    handler = HANDLERS.get(event["type"])
    if handler is not None:
        handler(db, run_id, event)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def split_label(tasks: list[list]) -> str:
    """``"10x10"`` for equal tasks, ``"50+5x10"`` for a larger first task, else the sizes joined by ``/``."""
    sizes = [len(t) for t in tasks]
    if not sizes:
        return ""
    if len(set(sizes)) == 1:
        return f"{len(sizes)}x{sizes[0]}"
    if len(set(sizes[1:])) == 1:
        return f"{sizes[0]}+{len(sizes) - 1}x{sizes[1]}"
    return "/".join(map(str, sizes))


def _run_started(db: Database, run_id: str, ev: dict) -> None:
    # A resumed run starts again: it is running and its old end no longer holds.
    fields: dict[str, Any] = {"status": "running", "finished": None, "error": None}
    config = ev.get("config")
    if isinstance(config, dict):
        fields["config"] = _dumps(config)
        fields["method"] = config.get("method")
        fields["dataset"] = (config.get("data") or {}).get("name")
    tasks = ev.get("tasks")
    if isinstance(tasks, list) and tasks:
        fields["n_tasks"] = len(tasks)
        fields["split"] = split_label(tasks)
    db["runs"].update(run_id, fields)
    env = ev.get("env") if isinstance(ev.get("env"), dict) else {}
    # A run started by hand has no launch.json: its own pid and host, when it reports them, allow pid checks.
    db.execute("UPDATE runs SET started = coalesce(started, ?), pid = coalesce(pid, ?), host = coalesce(host, ?) "
               "WHERE run_id = ?", [ev["ts"], env.get("pid"), env.get("host"), run_id])


def _step(db: Database, run_id: str, ev: dict) -> None:
    db["steps"].insert(
        {
            "run_id": run_id,
            "seq": ev["seq"],
            "task": ev.get("task"),
            "epoch": ev.get("epoch"),
            "step": ev.get("step"),
            "steps_total": ev.get("steps_total"),
            "lr": ev.get("lr"),
            "ips": ev.get("ips"),
            "losses": _dumps(ev.get("losses") or {}),
        },
        replace=True,
    )


def _eval(db: Database, run_id: str, ev: dict) -> None:
    t = ev["after_task"]
    counts = ev.get("task_n") or []
    for i, acc in enumerate(ev.get("task_acc") or []):
        n = counts[i] if i < len(counts) else None
        db["matrix"].upsert({"run_id": run_id, "after_task": t, "eval_task": i, "acc": acc, "n": n},
                            pk=("run_id", "after_task", "eval_task"))
    db["tasks"].upsert({"run_id": run_id, "task": t, "acc": ev.get("acc")}, pk=("run_id", "task"))
    _update_metrics(db, run_id, t)


def _update_metrics(db: Database, run_id: str, t: int) -> None:
    """Metrics so far after task ``t``, from the matrix rows and A_t of tasks 0..t."""
    rows: dict[int, list[float]] = {}
    for r in db.query("SELECT after_task, acc FROM matrix WHERE run_id = ? AND after_task <= ? "
                      "ORDER BY after_task, eval_task", [run_id, t]):
        rows.setdefault(r["after_task"], []).append(r["acc"])
    accs = [r["acc"] for r in db.query("SELECT acc FROM tasks WHERE run_id = ? AND task <= ? "
                                       "AND acc IS NOT NULL ORDER BY task", [run_id, t])]
    m = metrics.summary([rows[k] for k in sorted(rows)], accs)
    db["tasks"].update((run_id, t), {"avg_acc": m["avg"], "forgetting": m["forgetting"], "bwt": m["bwt"]})
    db["runs"].update(run_id, m)


def _task_finished(db: Database, run_id: str, ev: dict) -> None:
    ips = db.execute("SELECT avg(ips) FROM steps WHERE run_id = ? AND task = ?", [run_id, ev["task"]]).fetchone()[0]
    db["tasks"].upsert({"run_id": run_id, "task": ev["task"], "seconds": ev.get("seconds"), "ips": ips},
                       pk=("run_id", "task"))


def _per_task(table: str, *keys: str) -> Callable[[Database, str, dict], None]:
    """A handler keeping the newest event of its type per task, its list fields as JSON."""
    def handler(db: Database, run_id: str, ev: dict) -> None:
        row = {"run_id": run_id, "task": ev["task"], "seq": ev["seq"]}
        row.update({k: _dumps(ev.get(k)) for k in keys})
        columns = ", ".join(f'"{k}"' for k in row)  # "values" is an SQL keyword
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f'"{k}" = excluded."{k}"' for k in ["seq", *keys])
        db.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT (run_id, task) "
            f"DO UPDATE SET {updates} WHERE excluded.seq > {table}.seq",
            list(row.values()),
        )
    return handler


def _run_ended(db: Database, run_id: str, ev: dict) -> None:
    fields: dict[str, Any] = {"status": TERMINAL[ev["type"]], "finished": ev["ts"]}
    if ev["type"] == "run_finished":
        fields.update({k: ev.get(k) for k in ("last", "avg", "forgetting", "bwt")})
    elif ev["type"] == "run_failed":
        fields["error"] = ev.get("error")
    db["runs"].update(run_id, fields)


HANDLERS: dict[str, Callable[[Database, str, dict], None]] = {
    "run_started": _run_started,
    "step": _step,
    "eval": _eval,
    "task_finished": _task_finished,
    "relevance": _per_task("relevance", "rows", "cols", "values", "utility"),
    "pool": _per_task("pool", "kept", "pruned"),
    "affinity": _per_task("affinity", "labels", "values"),
    "run_finished": _run_ended,
    "run_failed": _run_ended,
    "run_stopped": _run_ended,
}
