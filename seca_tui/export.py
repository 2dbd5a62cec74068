"""Run logs as CSV, with exactly the columns of design.md, and the flat run record that
``export --all``, ``runs --json`` and ``show --json`` share.

Floats are written with ``repr`` (Python's ``str`` of a float), which reads back to the same float.
Tasks are numbered 1…T, as people read them (``task``, ``after_task``, ``eval_task``, pool labels ``T1``);
the store keeps the events' 0-based indices.
"""
from __future__ import annotations

import csv
import json
from functools import lru_cache
from typing import Any, Iterable, TextIO

from seca_tui import tasks
from seca_tui.ingest import flatten
from seca_tui.store import RUN_COLUMNS, Store, paused_gc

TABLES = ("tasks", "matrix", "steps", "relevance")
COLUMNS = {
    "tasks": ["run_id", "task", "acc", "avg_acc", "forgetting", "bwt", "seconds", "ips"],
    "matrix": ["run_id", "after_task", "eval_task", "acc", "n"],
    "steps": ["run_id", "task", "epoch", "step", "lr", "ips"],  # then one column per loss name
    "relevance": ["run_id", "task", "row", "col", "value"],
}


@lru_cache(maxsize=1 << 16)
def flat_config(text: str | None) -> dict[str, Any]:
    """A run's config (the run log's JSON text, ``config_json``) as dotted keys. Parsed once per distinct
    text: the browser filters ten thousand runs again every few seconds. Shared: read it, never change it."""
    return flatten(json.loads(text), "") if text else {}


def _columns(run: dict) -> dict[str, Any]:
    """A run's ``RUN_COLUMNS``, in order: the start of its record."""
    return {k: run.get(k) for k in RUN_COLUMNS}


def run_record(run: dict) -> dict[str, Any]:
    """One run (``Store.run``) as a flat row: the ``RUN_COLUMNS``, then its config as ``config.a.b`` keys."""
    return {**_columns(run), **flatten(run.get("config") or {}, "config.")}


TASK_COLUMNS = ("task", "after_task", "eval_task")  # 0-based in the store, 1-based in a CSV


def numbered(row: dict) -> dict:
    """A store row with its task columns numbered for people (0 → 1)."""
    return {k: tasks.number(v) if k in TASK_COLUMNS and v is not None else v for k, v in row.items()}


def table_rows(store: Store, run_ids: Iterable[str], table: str) -> tuple[list[str], list[dict]]:
    """The header and rows of one table over several runs, tasks numbered 1…T."""
    run_ids = list(run_ids)
    if table == "tasks":
        rows = [numbered(r) for rid in run_ids for r in store.task_rows(rid)]
    elif table == "matrix":
        rows = [numbered(r) for rid in run_ids for r in store.matrix_rows(rid)]
    elif table == "steps":
        return _steps(store, run_ids)
    elif table == "relevance":
        rows = [
            {"run_id": rid, "task": tasks.number(rel["task"]), "row": row, "col": tasks.pool_label(col), "value": value}
            for rid in run_ids
            for rel in store.per_task(rid, "relevance")
            for row, values in zip(rel["rows"] or [], rel["values"] or [])
            for col, value in zip(rel["cols"] or [], values)
        ]
    else:
        raise ValueError(f"unknown table {table!r}; one of {', '.join(TABLES)}")
    return COLUMNS[table], rows


def _steps(store: Store, run_ids: list[str]) -> tuple[list[str], list[dict]]:
    rows, losses = [], {}  # a dict keeps the loss names in order of first appearance
    for rid in run_ids:
        for step in store.steps(rid):
            losses.update(dict.fromkeys(step["losses"]))
            rows.append({**numbered({k: step[k] for k in COLUMNS["steps"]}), **step["losses"]})
    return COLUMNS["steps"] + list(losses), rows


def run_records(runs: Iterable[dict]) -> list[dict[str, Any]]:
    """The ``run_record`` of each run as ``Store.runs(for_records=True)`` lists them: one query for all, where a
    ``store.run()`` each took two more per run, and the stored flat config parsed by json's C decoder, where
    flattening each config in Python took a third of a second at ten thousand runs."""
    with paused_gc():
        return [{**_columns(r), **json.loads(r["config_flat"] or "{}")} for r in runs]


def record_text(run: dict) -> str:
    """``json.dumps(run_record(...))`` of a run as ``Store.runs(for_records=True)`` lists it, its config
    never parsed: the columns' JSON, then the keys of its stored flat config's text (which json.dumps wrote
    with the same settings) spliced in after them."""
    columns, flat = json.dumps(_columns(run)), run["config_flat"]
    # "{}": a config of empty sections alone, which has no keys to splice
    return columns if flat in (None, "{}") else f"{columns[:-1]}, {flat[1:]}"


def all_runs(store: Store, include_archived: bool = True) -> tuple[list[str], list[dict]]:
    """One row per run, config keys unioned over runs (presets of different ages differ)."""
    records = run_records(store.runs(include_archived=include_archived, for_records=True))
    columns = dict.fromkeys(RUN_COLUMNS)
    for record in records:
        columns.update(dict.fromkeys(record))
    return list(columns), records


PLAIN = {str, int, float}  # written as they are (not bool, an int of another type): most cells, checked quickly


def _cell(value: Any) -> Any:
    """A value as its CSV cell: empty for None; booleans, lists and mappings as JSON; else as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as in the JSON output (json.dumps for each took a tenth of a second)
    if isinstance(value, (list, dict)):
        return json.dumps(value)  # [2, 5], as in the JSON output
    return value


def write_csv(out: TextIO, columns: list[str], rows: Iterable[dict]) -> int:
    """Write a header and rows (missing keys blank); returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([v if type(v) in PLAIN else _cell(v) for v in map(row.get, columns)])
        count += 1
    return count
