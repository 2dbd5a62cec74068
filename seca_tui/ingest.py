"""From a run dir's ``events.jsonl`` to rows: reading new lines from a byte offset, and one handler
per event type that turns an event into rows of the run log.

Reading is separated from writing so the store can do both inside one ``BEGIN IMMEDIATE``
transaction: the offset is read and advanced under the write lock, so two processes ingesting the
same run never apply a line twice, and a crash between the two leaves nothing half-applied.

Whatever a file holds, reading never raises: a line is an event (and may still be refused by
:func:`check` when its fields cannot be what the engine writes) or a bad line, reported by number.
"""
from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from seca_tui import metrics

if TYPE_CHECKING:  # sqlite-utils is imported by the store alone, without numpy (see store.py)
    from sqlite_utils import Database

SCHEMA_VERSION = 1  # the newest events.jsonl schema this module understands
TERMINAL = {"run_finished": "finished", "run_failed": "failed", "run_stopped": "stopped"}
MAX_TASKS = 1000  # a task index past this is garbage, not a run (the matrix view is tasks x tasks)
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER

# What applying an event with fields of the wrong shape can raise; the store then counts its line as
# bad and rolls back only that event. Not sqlite3.OperationalError: a full disk or a lock is not the
# line's fault and must abort the whole ingest.
EVENT_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.DataError)


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
    numbers: list[int] = field(default_factory=list)  # the line number of each event


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
    # split on "\n" alone: bytes.splitlines() also splits at a stray "\r", and the numbers would drift
    for number, raw in enumerate(data[:end].split(b"\n")[:-1], start=lines + 1):
        event = _parse(raw)
        if event is None:
            chunk.bad_lines.append(number)
            continue
        if event["v"] > SCHEMA_VERSION:
            chunk.newer_lines.append(number)
        chunk.events.append(event)
        chunk.numbers.append(number)
    chunk.offset = offset + end
    chunk.lines = lines + data[:end].count(b"\n")
    return chunk


def _parse(raw: bytes) -> dict | None:
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[... thousands deep
        return None
    if not isinstance(event, dict):
        return None
    if not (_is_int(event.get("v")) and _is_int(event.get("seq")) and isinstance(event.get("type"), str)):
        return None
    if not 0 <= event["seq"] <= MAX_SEQ:
        return None
    event.setdefault("ts", None)
    if event["ts"] is not None and not _is_number(event["ts"]):
        return None
    return event


# ----------------------------------------------------------------------------------------- check

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float (the engine writes NaN and infinities as null)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and abs(value) < 1e300)


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _task(ev: dict, key: str, optional: bool = False, lowest: int = 0) -> None:
    value = ev.get(key)
    if optional and value is None:
        return
    _need(_is_int(value) and lowest <= value < MAX_TASKS, f"{key} is not a task index")


def _numbers(value: Any, optional_items: bool = False) -> bool:
    return isinstance(value, list) and all(_is_number(v) or (optional_items and v is None) for v in value)


def _number_or_none(ev: dict, *keys: str) -> None:
    for key in keys:
        _need(ev.get(key) is None or _is_number(ev[key]), f"{key} is not a number")


def _str_or_none(ev: dict, *keys: str) -> None:
    for key in keys:
        _need(ev.get(key) is None or isinstance(ev[key], str), f"{key} is not text")


def _check_run_started(ev: dict) -> None:
    config = ev.get("config")
    _need(config is None or isinstance(config, dict), "config is not a mapping")
    for section in ("data", "scenario", "model", "train", "seca"):
        _need(not config or config.get(section) is None or isinstance(config[section], dict), f"config.{section}")
    if config:
        for key in ("name", "method"):
            _need(config.get(key) is None or isinstance(config[key], str), f"config.{key}")
        _need(isinstance((config.get("data") or {}).get("name", ""), (str, type(None))), "config.data.name")
        epochs = (config.get("train") or {}).get("epochs")
        _need(epochs is None or _is_int(epochs), "config.train.epochs")
    tasks = ev.get("tasks")
    _need(tasks is None or (isinstance(tasks, list) and len(tasks) <= MAX_TASKS
                            and all(isinstance(t, list) and all(_is_int(c) for c in t) for t in tasks)),
          "tasks is not a list of class lists")
    env = ev.get("env")
    _need(env is None or isinstance(env, dict), "env is not a mapping")
    if env:
        _need(env.get("pid") is None or (_is_int(env["pid"]) and 0 < env["pid"] < 2**31), "env.pid")
        _str_or_none(env, "host")


def _check_step(ev: dict) -> None:
    _task(ev, "task")
    for key in ("epoch", "step", "steps_total"):
        _need(ev.get(key) is None or (_is_int(ev[key]) and 0 <= ev[key] <= MAX_SEQ), f"{key} is not a count")
    _number_or_none(ev, "lr", "ips")
    losses = ev.get("losses")
    _need(losses is None or (isinstance(losses, dict) and all(v is None or _is_number(v) for v in losses.values())),
          "losses is not a mapping of numbers")


def _check_eval(ev: dict) -> None:
    _task(ev, "after_task")
    accs = ev.get("task_acc")
    _need(_numbers(accs) and len(accs) == ev["after_task"] + 1, "task_acc is not one accuracy per seen task")
    counts = ev.get("task_n")
    _need(counts is None or (isinstance(counts, list) and len(counts) == len(accs)
                             and all(_is_int(n) and 0 <= n <= MAX_SEQ for n in counts)), "task_n")
    _number_or_none(ev, "acc")


def _check_grid(ev: dict, labels: str, values: str) -> None:
    _need(isinstance(ev.get(labels), list) and all(isinstance(x, str) for x in ev[labels]), f"{labels}")
    _need(isinstance(ev.get(values), list) and all(_numbers(row, True) for row in ev[values]), f"{values}")


def _check_relevance(ev: dict) -> None:
    _task(ev, "task")
    _check_grid(ev, "rows", "values")
    _need(isinstance(ev.get("cols"), list) and all(isinstance(x, str) for x in ev["cols"]), "cols")
    _need(ev.get("utility") is None or _numbers(ev["utility"], True), "utility")


def _check_pool(ev: dict) -> None:
    _task(ev, "task")
    _need(isinstance(ev.get("kept"), list) and all(isinstance(x, str) for x in ev["kept"]), "kept")
    _str_or_none(ev, "pruned")


def _check_affinity(ev: dict) -> None:
    _task(ev, "task")
    _check_grid(ev, "labels", "values")


def _check_task_started(ev: dict) -> None:
    _task(ev, "task")


def _check_task_finished(ev: dict) -> None:
    _task(ev, "task")
    _number_or_none(ev, "seconds")


def _check_checkpoint(ev: dict) -> None:
    _task(ev, "task")
    _str_or_none(ev, "path", "sha256")


def _check_log(ev: dict) -> None:
    _need(isinstance(ev.get("level"), str) and isinstance(ev.get("message"), str), "level and message")


def _check_phase(ev: dict) -> None:
    _need(isinstance(ev.get("phase"), str) and isinstance(ev.get("message"), str), "phase and message")
    _task(ev, "task", optional=True)


def _check_run_finished(ev: dict) -> None:
    _number_or_none(ev, "last", "avg", "forgetting", "bwt")


def _check_run_failed(ev: dict) -> None:
    _str_or_none(ev, "error", "traceback")


def _check_run_stopped(ev: dict) -> None:
    _task(ev, "after_task", optional=True, lowest=-1)


CHECKS: dict[str, Callable[[dict], None]] = {
    "run_started": _check_run_started, "step": _check_step, "eval": _check_eval,
    "relevance": _check_relevance, "pool": _check_pool, "affinity": _check_affinity,
    "task_started": _check_task_started, "task_finished": _check_task_finished, "checkpoint": _check_checkpoint,
    "log": _check_log, "phase": _check_phase, "run_finished": _check_run_finished, "run_failed": _check_run_failed,
    "run_stopped": _check_run_stopped,
}


def check(event: dict) -> None:
    """Raise ValueError when a v1 event's fields cannot be what the engine writes (a line appended by
    something else, or damaged in place): readers of the run log may then trust every stored field.
    Unknown types and newer schema versions pass; they are kept raw and never interpreted."""
    if event["v"] > SCHEMA_VERSION:
        return
    checker = CHECKS.get(event["type"])
    if checker is not None:
        checker(event)


# ----------------------------------------------------------------------------------------- apply


def apply(db: Database, run_id: str, event: dict) -> None:
    """Write the rows an event implies; the caller has inserted it into ``events`` already.

    Events of a newer schema are only kept raw: their fields may mean something else. Raises
    ValueError (see :func:`check`) for an event that is not what the engine writes.
    """
    if event["v"] > SCHEMA_VERSION:
        return
    check(event)
    if isinstance(event["ts"], (int, float)):  # the run started with its first event (its start-up's phase)
        db.execute(
            "UPDATE runs SET heartbeat_ts = max(coalesce(heartbeat_ts, 0), ?), started = coalesce(started, ?) "
            "WHERE run_id = ?",
            [event["ts"], event["ts"], run_id],
        )
    handler = HANDLERS.get(event["type"])
    if handler is not None:
        handler(db, run_id, event)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def flatten(tree: dict, prefix: str) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{prefix + "a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def config_flat(text: str) -> str:
    """A run's config (its JSON text) flattened: the JSON object text of its ``config.a.b`` keys, as
    ``runs --json`` writes them (``export.record_text`` splices it in as it is)."""
    return json.dumps(flatten(json.loads(text), "config."))


def finite(value: Any) -> Any:
    """``value`` with every infinite or NaN float as its text (``"inf"``, ``"nan"``): SQLite's JSON
    functions refuse JSON's Infinity and NaN, so one hand-edited ``config.yaml`` with ``.inf`` made every
    listing of the run log fail."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def set_config(db: Database, run_id: str, config: dict | None) -> None:
    """Write a run's config (as JSON text; dates and such as their text), then its ``config_flat``: every
    writer of a config goes through this. Two statements, because writing ``config`` clears ``config_flat``
    (schema 6's trigger): a seca-tui from before schema 6 still running writes the config alone, and leaves
    no stale flat config behind."""
    text = json.dumps(finite(config), separators=(",", ":"), default=str) if config else None
    db.execute("UPDATE runs SET config = ? WHERE run_id = ?", [text, run_id])
    db.execute("UPDATE runs SET config_flat = ? WHERE run_id = ?", [config_flat(text) if text else None, run_id])


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


def _status(db: Database, run_id: str, status: str) -> str:
    """``status``, unless the run is imported: a published log keeps that status whatever it holds."""
    row = db.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return "imported" if row and row[0] == "imported" else status


def _run_started(db: Database, run_id: str, ev: dict) -> None:
    # A resumed run starts again: it is running and its old end no longer holds.
    fields: dict[str, Any] = {"status": _status(db, run_id, "running"), "finished": None, "error": None}
    config = ev.get("config")
    if isinstance(config, dict):
        set_config(db, run_id, config)
        fields["method"] = config.get("method")
        fields["dataset"] = (config.get("data") or {}).get("name")
    tasks = ev.get("tasks")
    if isinstance(tasks, list) and tasks:
        fields["n_tasks"] = len(tasks)
        fields["split"] = split_label(tasks)
    db["runs"].update(run_id, fields)
    env = ev.get("env") if isinstance(ev.get("env"), dict) else {}
    # A run started by hand has no launch.json: its own pid and host, when it reports them, allow pid checks.
    db.execute("UPDATE runs SET pid = coalesce(pid, ?), host = coalesce(host, ?) WHERE run_id = ?",
               [env.get("pid"), env.get("host"), run_id])


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
    fields: dict[str, Any] = {"status": _status(db, run_id, TERMINAL[ev["type"]]), "finished": ev["ts"]}
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
