"""The run log: a SQLite file (``<home>/runs.db``) built from run dirs by idempotent ingest.

The run dirs are the truth; the database is a queryable copy that any process may bring up to
date at any time. Concurrency rules (see design.md, known pitfalls):

- one connection per thread (sqlite-utils 4 ties a connection to the thread that opened it), made
  on first use in that thread;
- every write is one explicit ``BEGIN IMMEDIATE`` transaction waiting on a busy timeout, because
  sqlite-utils' ``atomic()`` opens a deferred transaction that fails at once under a concurrent
  writer;
- WAL on local disks, a rollback journal on network filesystems, where WAL's shared memory is unsafe.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

from engine import paths
from engine.config import ConfigError
from seca_tui import ingest, variant
from seca_tui.ingest import IngestReport
from seca_tui.process import is_alive, run_processes

__all__ = ["Store", "IngestReport", "UnknownRun", "RUN_COLUMNS", "STATUSES"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cycle collector paused while a bulk of plain rows is built (dicts of numbers and text,
    which hold no cycles): with ten thousand runs its passes over the growing heap took an eighth of
    `seca-tui runs --json`. Process-wide, so only around such loops; it runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _absent(modules: tuple[str, ...]) -> Iterator[None]:
    """Imports inside see ``modules`` as not installed (those not loaded already); afterwards they import
    as usual. ``None`` in ``sys.modules`` makes ``import`` raise ImportError, as for a missing module."""
    hidden = [name for name in modules if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:  # never a module loaded since
                del sys.modules[name]


# sqlite-utils imports numpy (and pandas) when it can, only to map their scalar types to column types;
# the run log is given parsed JSON and YAML alone. numpy took a third of `seca-tui runs --json`'s imports.
with _absent(("numpy", "pandas")):
    from sqlite_utils import Database

# The columns of `export --all` and the keys of `runs --json` (before the flattened config).
RUN_COLUMNS = ["run_id", "name", "status", "method", "variant", "dataset", "n_tasks", "last", "avg", "forgetting",
               "bwt", "created", "finished", "error", "slurm_job", "slurm_state"]
# What `Store.runs(for_records=True)` reads of a run: the RUN_COLUMNS (variant from variant.SWITCHES_SQL),
# what run_filter matches on, and the config already flattened; the config itself only where it has not been
# flattened (written by a seca-tui from before schema 6; see ingest.set_config).
RECORD_SQL = ", ".join([c for c in RUN_COLUMNS if c != "variant"] + [
    "tags", "archived", "config_flat", "CASE WHEN config_flat IS NULL THEN config END AS unflattened"])
# imported: a published log read by `seca-tui import` (seca_tui/importers.py), never run here
STATUSES = ("queued", "running", "finished", "failed", "stopped", "lost", "cancelled", "imported")
ACTIVE = ("queued", "running")
FINAL = ("finished", "failed", "stopped", "lost", "cancelled")
BUSY_TIMEOUT_S = 30.0
RUN_TABLES = ("runs", "tasks", "matrix", "steps", "relevance", "pool", "affinity", "events", "ingest_state")
# libyaml's safe loader when PyYAML has it: the pure-Python one took half of registering a run
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
HEARTBEAT_STALE_S = 60.0  # a run on another host is lost after this long without an event

NETWORK_FS = {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph",
              "glusterfs", "afs", "9p", "ocfs2", "gfs2", "pvfs2", "orangefs", "panfs", "wekafs"}


class UnknownRun(ConfigError):
    """A run id or name that matches no run, or more than one."""


# ----------------------------------------------------------------------------------------- schema

def _v1(db: Database) -> None:
    db.executescript("""
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY, name TEXT, preset TEXT, config TEXT, method TEXT, dataset TEXT,
            split TEXT, n_tasks INTEGER, status TEXT NOT NULL DEFAULT 'queued', pid INTEGER, host TEXT,
            run_dir TEXT, created REAL, started REAL, finished REAL,
            last REAL, avg REAL, forgetting REAL, bwt REAL,
            tags TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '',
            archived INTEGER NOT NULL DEFAULT 0, heartbeat_ts REAL, error TEXT, gpus TEXT
        );
        CREATE TABLE tasks (
            run_id TEXT NOT NULL, task INTEGER NOT NULL, acc REAL, avg_acc REAL, forgetting REAL,
            bwt REAL, seconds REAL, ips REAL, PRIMARY KEY (run_id, task)
        );
        CREATE TABLE matrix (
            run_id TEXT NOT NULL, after_task INTEGER NOT NULL, eval_task INTEGER NOT NULL, acc REAL,
            n INTEGER, PRIMARY KEY (run_id, after_task, eval_task)
        );
        CREATE TABLE steps (
            run_id TEXT NOT NULL, seq INTEGER NOT NULL, task INTEGER, epoch INTEGER, step INTEGER,
            steps_total INTEGER, lr REAL, ips REAL, losses TEXT, PRIMARY KEY (run_id, seq)
        );
        CREATE TABLE relevance (
            run_id TEXT NOT NULL, task INTEGER NOT NULL, seq INTEGER NOT NULL, rows TEXT, cols TEXT,
            "values" TEXT, utility TEXT, PRIMARY KEY (run_id, task)
        );
        CREATE TABLE pool (
            run_id TEXT NOT NULL, task INTEGER NOT NULL, seq INTEGER NOT NULL, kept TEXT, pruned TEXT,
            PRIMARY KEY (run_id, task)
        );
        CREATE TABLE affinity (
            run_id TEXT NOT NULL, task INTEGER NOT NULL, seq INTEGER NOT NULL, labels TEXT, "values" TEXT,
            PRIMARY KEY (run_id, task)
        );
        CREATE TABLE events (
            run_id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL, type TEXT NOT NULL, v INTEGER NOT NULL,
            body TEXT NOT NULL, PRIMARY KEY (run_id, seq)
        );
        CREATE INDEX events_by_type ON events (run_id, type, seq);
        CREATE TABLE ingest_state (
            run_id TEXT PRIMARY KEY, byte_offset INTEGER NOT NULL, lines INTEGER NOT NULL
        );
    """)


def _v2(db: Database) -> None:
    # When the launcher sent SIGTERM: a process gone without a final event after that has stopped
    # (it may have died before installing its handler), it is not lost.
    db.execute("ALTER TABLE runs ADD COLUMN stop_requested REAL")


def _v3(db: Database) -> None:
    # The run queue: when a run was submitted (``queued_at``; NULL for a run started at once) and the
    # devices it holds while it runs (``device``: "0,1", "cpu"), plus home-wide settings (per-GPU limit).
    db.executescript("""
        ALTER TABLE runs ADD COLUMN device TEXT;
        ALTER TABLE runs ADD COLUMN queued_at REAL;
        CREATE INDEX runs_by_status ON runs (status, queued_at);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """)


def _v4(db: Database) -> None:
    # Runs submitted to Slurm (seca_tui/slurm.py): the job id (``123``, an array element ``123_4``), and
    # its state as Slurm last reported it (``PENDING``...) with the reason, node or elapsed time.
    db.executescript("""
        ALTER TABLE runs ADD COLUMN slurm_job TEXT;
        ALTER TABLE runs ADD COLUMN slurm_state TEXT;
        ALTER TABLE runs ADD COLUMN slurm_reason TEXT;
    """)


def _v5(db: Database) -> None:
    # Runs are listed newest first: walking an index, the browser's first screenful of ten thousand runs
    # is read without sorting them all (and their config text) first.
    db.execute("CREATE INDEX runs_by_created ON runs (created, run_id)")


def _v6(db: Database) -> None:
    # Each run's config flattened to config.a.b keys, as JSON object text (ingest.config_flat): `runs --json`
    # splices it into each record and `export --all` parses it in C, where flattening ten thousand configs
    # in Python took a third of a second. Writing a config clears it: only ingest.set_config writes it
    # again, so a config written by a seca-tui from before this schema is flattened when read instead.
    db.execute("ALTER TABLE runs ADD COLUMN config_flat TEXT")
    for run_id, text in db.execute("SELECT run_id, config FROM runs WHERE config IS NOT NULL").fetchall():
        ingest.set_config(db, run_id, json.loads(text))  # also rewrites Infinity and NaN, which SQLite cannot read
    db.execute("CREATE TRIGGER runs_config_written AFTER UPDATE OF config ON runs "
               "BEGIN UPDATE runs SET config_flat = NULL WHERE run_id = new.run_id; END")


# Each entry brings the schema from version i to i + 1; append, never edit a released one.
MIGRATIONS = [_v1, _v2, _v3, _v4, _v5, _v6]


# ----------------------------------------------------------------------------------------- journal

def filesystem_type(path: Path, mounts: str | None = None) -> str:
    """The type of the filesystem holding ``path``, from ``/proc/mounts`` ("" when unknown)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return ""
    target = str(Path(path).resolve())
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")  # /proc/mounts escapes spaces
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def journal_mode(path: Path, mounts: str | None = None) -> str:
    """``wal`` on local disks; ``delete`` on network filesystems, where WAL's shared memory breaks.
    ``SECA_TUI_JOURNAL=wal|delete`` overrides the guess (a filesystem /proc/mounts misnames)."""
    forced = os.environ.get("SECA_TUI_JOURNAL", "").lower()
    if forced in ("wal", "delete"):
        return forced
    kind = filesystem_type(path, mounts)
    return "delete" if kind in NETWORK_FS or kind.startswith("fuse.") else "wal"


# ----------------------------------------------------------------------------------------- store

def _loads(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default


def _run_dict(row: dict, with_config: bool = False) -> dict:
    """A runs row (a dict of its own, changed in place) as the API gives it: tags as a list, archived
    as a bool, the config text only as ``config_json`` when asked for, the ``variant`` (method or
    ablation) when the row was selected with ``variant.SWITCHES_SQL``, and ``config_flat``, whatever wrote
    the config, when it was selected with :data:`RECORD_SQL`."""
    config = row.pop("config", None)
    if with_config:
        row["config_json"] = config
    unflattened = row.pop("unflattened", None)
    if unflattened:
        row["config_flat"] = ingest.config_flat(unflattened)
    row["variant"] = variant.of_row(row)
    row["tags"] = [] if row["tags"] == "[]" else _loads(row["tags"], [])  # most runs have none
    row["archived"] = bool(row["archived"])
    return row


class Store:
    """The run log in ``path``; run dirs live under ``runs_dir`` (default: ``runs/`` beside it)."""

    def __init__(self, path: str | Path, runs_dir: str | Path | None = None):
        self.path = Path(path)
        self.runs_dir = Path(runs_dir) if runs_dir else self.path.parent / "runs"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()
        # What runs() lists of a run: every column but config_flat, 2 KB a run that only records read
        # (for_records) and that the browser would otherwise hold for each of ten thousand runs.
        self._row_sql = ", ".join(c for c in self.db["runs"].columns_dict if c != "config_flat")

    @classmethod
    def open(cls, home: Path | None = None) -> "Store":
        """The store of a seca-tui home (``--home``/``SECA_TUI_HOME``/the XDG default)."""
        return cls(Path(home or paths.home()) / "runs.db")

    # --------------------------------------------------------------------- connections

    @property
    def db(self) -> Database:
        """This thread's connection, opened on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def _connect(self) -> Database:
        # isolation_level=None: the driver opens no transactions of its own; ours are explicit.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        want = journal_mode(self.path.parent)
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != want:
            conn.execute(f"PRAGMA journal_mode={want}")
        conn.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsync per commit is not needed
        db = Database(conn)
        # sqlite-utils finds out whether upserts work by creating and dropping a table on first use,
        # inside whatever transaction is open; the DROP fails ("database table is locked") while a
        # read is still stepping. SQLite has had ON CONFLICT upserts since 3.24: say so up front.
        db._supports_on_conflict = sqlite3.sqlite_version_info >= (3, 24)
        return db

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def transaction(self) -> contextlib.AbstractContextManager[Database]:
        """A ``BEGIN IMMEDIATE`` transaction on this thread's connection: the write lock is taken up front,
        so what is read inside stays true until the commit (the queue claims runs this way)."""
        return self._write()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        """One write transaction that takes the write lock up front, waiting up to the busy timeout."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")  # a rollback journal's COMMIT waits for readers and can time out too
        except BaseException:
            db.rollback()
            raise

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise ConfigError(f"{self.path} was written by a newer seca-tui (schema {version}); upgrade seca-tui.")
        if version == len(MIGRATIONS):
            return
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            for migration in MIGRATIONS[version:]:
                migration(db)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    # --------------------------------------------------------------------- ingest

    def register(self, run_dir: str | Path, **fields: Any) -> str:
        """Add a run from its dir (``launch.json``, ``config.yaml``) unless known; update ``fields``."""
        run_dir = Path(run_dir).resolve()
        with self._write() as db:
            self._register(db, run_dir)
            if fields:
                db["runs"].update(run_dir.name, self._checked(fields))
        return run_dir.name

    def _register(self, db: Database, run_dir: Path) -> None:
        if db.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_dir.name]).fetchone():
            return
        launch = _read_json(run_dir / "launch.json")
        config = _read_yaml(run_dir / "config.yaml")
        # Both files may have been edited by hand: take only fields of the right type.
        gpus = launch.get("gpus")
        gpus_ok = _typed(gpus, int) is not None or (isinstance(gpus, list) and all(_typed(g, int) is not None for g in gpus))
        tags = launch.get("tags")
        tags_ok = isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        db["runs"].insert({
            "run_id": run_dir.name,
            "name": _typed(launch.get("name"), str) or _typed(config.get("name"), str) or run_dir.name,
            "preset": _typed(launch.get("preset"), str),
            "method": _typed(config.get("method"), str),
            "dataset": _typed(_section(config, "data").get("name"), str),
            "n_tasks": _typed(_section(config, "scenario").get("n_tasks"), int),
            "status": "imported" if launch.get("imported") else "queued",
            "pid": _typed(launch.get("pid"), int),
            "host": _typed(launch.get("host"), str),
            "gpus": json.dumps(gpus) if gpus_ok else None,
            "tags": json.dumps(sorted(set(tags))) if tags_ok else "[]",
            "run_dir": str(run_dir),
            "created": _typed(launch.get("created"), float) or run_dir.stat().st_mtime,
        })
        ingest.set_config(db, run_dir.name, config)

    def ingest(self, run_dir: str | Path) -> IngestReport:
        """Bring the run log up to date with ``run_dir/events.jsonl``; safe to call any time, anywhere."""
        run_dir = Path(run_dir).resolve()
        run_id = run_dir.name
        report = IngestReport()
        if self._ingested_up_to(run_id) == _size(run_dir / "events.jsonl"):
            return report  # nothing new: pollers should not take the write lock for nothing
        with self._write() as db:
            self._register(db, run_dir)
            state = db.execute("SELECT byte_offset, lines FROM ingest_state WHERE run_id = ?", [run_id]).fetchone()
            chunk = ingest.read_new(run_dir / "events.jsonl", *(state or (0, 0)))
            refused = []
            for number, event in zip(chunk.numbers, chunk.events):
                # Each event in a savepoint: one whose fields are not what the engine writes is rolled
                # back alone and reported by line; a full disk or a lock still aborts the whole ingest.
                db.execute("SAVEPOINT event")
                try:
                    new = self._apply(db, run_id, event)
                    db.execute("RELEASE event")
                except ingest.EVENT_ERRORS:
                    db.execute("ROLLBACK TO event")
                    db.execute("RELEASE event")
                    refused.append(number)
                    continue
                report.new_events += new
            db["ingest_state"].upsert({"run_id": run_id, "byte_offset": chunk.offset, "lines": chunk.lines},
                                      pk="run_id")
        report.bad_lines = sorted(chunk.bad_lines + refused)
        report.newer_lines = [n for n in chunk.newer_lines if n not in refused]
        return report

    @staticmethod
    def _apply(db: Database, run_id: str, event: dict) -> bool:
        """Store one event and its rows; False when this seq is stored already with the same body (a
        re-read after a lost offset). The same seq with another body is refused: the engine never
        reuses one, so the later line is not the engine's."""
        body = json.dumps(event)
        cursor = db.execute("INSERT OR IGNORE INTO events (run_id, seq, ts, type, v, body) VALUES (?, ?, ?, ?, ?, ?)",
                            [run_id, event["seq"], event["ts"], event["type"], event["v"], body])
        if cursor.rowcount:
            ingest.apply(db, run_id, event)
            return True
        stored = db.execute("SELECT body FROM events WHERE run_id = ? AND seq = ?", [run_id, event["seq"]]).fetchone()
        if stored[0] != body:  # both dumped from parsed lines: equal events give equal text, NaN included
            raise ValueError(f"seq {event['seq']} is taken by another event")
        return False

    def ingest_all(self) -> dict[str, IngestReport]:
        """Ingest every run dir under ``runs_dir`` that has something new; returns reports by run id.
        What each known run has been ingested up to is read in one query: the browser calls this every
        few seconds, and a query per run dir took most of a second at ten thousand runs."""
        if not self.runs_dir.is_dir():
            return {}
        done = dict(self.db.execute("SELECT run_id, coalesce(byte_offset, 0) FROM runs LEFT JOIN ingest_state USING (run_id)"))
        with os.scandir(self.runs_dir) as entries:  # names and paths as text: Path objects sort slowly
            run_dirs = sorted((e.name, e.path) for e in entries if e.is_dir())
        reports = {}
        for run_id, run_dir in run_dirs:
            if done.get(run_id) == _size(os.path.join(run_dir, "events.jsonl")):
                continue  # nothing new (ingest would find the same, one query later)
            report = self.ingest(run_dir)
            if report:
                reports[run_id] = report
        return reports

    def _ingested_up_to(self, run_id: str) -> int | None:
        """The byte offset ingest has reached for a known run; ``None`` for a run not in the log yet."""
        row = self.db.execute("SELECT ingest_state.byte_offset FROM runs LEFT JOIN ingest_state USING (run_id) "
                              "WHERE run_id = ?", [run_id]).fetchone()
        return None if row is None else row[0] or 0

    def mark_lost(self, stale_after: float = HEARTBEAT_STALE_S) -> list[str]:
        """Mark running runs whose process is gone as ``lost``; returns their ids.

        On this host the pid decides; on another host (a shared home), or without a known pid, a
        heartbeat older than ``stale_after`` seconds does. A run is ingested once more first: a process that wrote its
        final event and exited is finished, not lost. One that was asked to stop is ``stopped``. A run
        submitted to Slurm is judged by its job's state instead (:func:`seca_tui.slurm.refresh`).
        """
        from seca_tui import slurm  # imports this module

        lost = slurm.refresh(self)
        now = time.time()
        # read whole: ingest writes
        for run in list(self.db.query("SELECT * FROM runs WHERE status = 'running' AND slurm_job IS NULL")):
            # A run started by hand (python -m engine run) has no pid we know of: judge it by heartbeat.
            alive = is_alive(run["pid"], run["host"], run["run_dir"]) if run["pid"] else None
            if alive is False and run_processes(run["run_dir"]):
                alive = True  # the ranks of a torchrun whose agent died still run, and still write events
            if alive is None:
                seen = run["heartbeat_ts"] or run["started"] or run["created"] or 0
                alive = now - seen < stale_after
            if alive:
                continue
            self.ingest(run["run_dir"])
            status, error = ("stopped", None) if run["stop_requested"] else ("lost", last_log_line(Path(run["run_dir"])))
            with self._write() as db:
                changed = db.execute(
                    # its last sign of life is the best guess of when it ended
                    "UPDATE runs SET status = ?, error = coalesce(error, ?), finished = coalesce(finished, heartbeat_ts) "
                    "WHERE run_id = ? AND status = 'running'",
                    [status, error, run["run_id"]],
                ).rowcount
            if changed and status == "lost":
                lost.append(run["run_id"])
        return lost

    # --------------------------------------------------------------------- reads

    def runs(self, status: str | None = None, include_archived: bool = False, with_config: bool = False,
             limit: int | None = None, for_records: bool = False) -> list[dict]:
        """Runs, newest first (the newest ``limit`` of them). ``with_config``: each run has its config's JSON text as
        ``config_json``, unparsed (``run_filter.flat_config`` parses each text once). ``for_records``: only
        what ``export.run_records`` and ``export.record_text`` read (:data:`RECORD_SQL`), quicker to list."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if not include_archived:
            where.append("archived = 0")
        columns = (RECORD_SQL + (", config" if with_config else "")) if for_records else self._row_sql
        sql = f"SELECT {columns}, {variant.SWITCHES_SQL} FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        cursor = self.db.execute(sql + " ORDER BY created DESC, run_id DESC" + (" LIMIT ?" if limit else ""),
                                 args + ([limit] if limit else []))
        names = [column[0] for column in cursor.description]
        with paused_gc():
            return [_run_dict(dict(zip(names, row)), with_config) for row in cursor]

    def changes(self) -> tuple[int, int]:
        """A value that changes whenever any connection has written to the run log since the last call
        gave it (SQLite's data_version counts others' commits, total_changes this connection's rows):
        pollers skip re-reading ten thousand runs when it has not."""
        return self.db.execute("PRAGMA data_version").fetchone()[0], self.db.conn.total_changes

    def run(self, run_id: str) -> dict | None:
        """One run with its ``config`` (dict) and ``matrix`` (rows of a_{t,i}), or ``None``."""
        row = next(self.db.query(f"SELECT *, {variant.SWITCHES_SQL} FROM runs WHERE run_id = ?", [run_id]), None)
        if row is None:
            return None
        out = _run_dict(row, with_config=True)
        out["config"] = _loads(out.pop("config_json"), {})
        out["gpus"] = _loads(row["gpus"])
        out["matrix"] = self.matrix(run_id)
        return out

    def matrix(self, run_id: str) -> list[list[float | None]]:
        """The accuracy matrix as a square grid: ``[t][i]`` = a_{t,i}, ``None`` where not evaluated
        (above the diagonal, and rows of tasks still to come when ``n_tasks`` is known)."""
        cells = list(self.db.query("SELECT after_task, eval_task, acc FROM matrix WHERE run_id = ?", [run_id]))
        n_tasks = self.db.execute("SELECT n_tasks FROM runs WHERE run_id = ?", [run_id]).fetchone()
        size = max([(n_tasks[0] or 0) if n_tasks else 0]
                   + [max(c["after_task"], c["eval_task"]) + 1 for c in cells])
        grid: list[list[float | None]] = [[None] * size for _ in range(size)]
        for c in cells:
            grid[c["after_task"]][c["eval_task"]] = c["acc"]
        return grid

    def task_rows(self, run_id: str) -> list[dict]:
        """Per task: acc (A_t), avg_acc, forgetting and bwt so far, seconds, ips."""
        return list(self.db.query("SELECT * FROM tasks WHERE run_id = ? ORDER BY task", [run_id]))

    def matrix_rows(self, run_id: str) -> list[dict]:
        """The matrix as rows of (run_id, after_task, eval_task, acc, n)."""
        return list(self.db.query(
            "SELECT * FROM matrix WHERE run_id = ? ORDER BY after_task, eval_task", [run_id]))

    def steps(self, run_id: str, after_seq: int = -1) -> list[dict]:
        """Step rows with ``seq > after_seq``, oldest first; ``losses`` is a dict. The engine numbers
        events from 0, so the default -1 means all."""
        rows = self.db.query("SELECT * FROM steps WHERE run_id = ? AND seq > ? ORDER BY seq", [run_id, after_seq])
        return [{**r, "losses": _loads(r["losses"], {})} for r in rows]

    def per_task(self, run_id: str, table: str) -> list[dict]:
        """The newest relevance, pool or affinity data of each task, its JSON fields decoded."""
        if table not in ("relevance", "pool", "affinity"):
            raise ValueError(f"no per-task table {table!r}")
        rows = self.db.query(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY task", [run_id])
        keep = ("run_id", "task", "seq")
        return [{k: (v if k in keep else _loads(v)) for k, v in r.items()} for r in rows]

    def events(self, run_id: str, after_seq: int = -1, types: list[str] | None = None) -> list[dict]:
        """Events (as written by the engine) with ``seq > after_seq``, oldest first (seq starts at 0)."""
        sql, args = "SELECT body FROM events WHERE run_id = ? AND seq > ?", [run_id, after_seq]
        if types:
            sql += f" AND type IN ({', '.join('?' for _ in types)})"
            args += list(types)
        return [json.loads(r[0]) for r in self.db.execute(sql + " ORDER BY seq", args)]

    def latest(self, run_id: str, type: str) -> dict | None:
        """The newest event of ``type`` (e.g. relevance, affinity, pool, step, eval), or ``None``."""
        row = self.db.execute("SELECT body FROM events WHERE run_id = ? AND type = ? ORDER BY seq DESC LIMIT 1",
                              [run_id, type]).fetchone()
        return json.loads(row[0]) if row else None

    def resolve(self, ref: str) -> str:
        """The run id that ``ref`` names: a run id, a name, a unique prefix of either, or a unique end
        of a run id (its random part, ``3fa2``)."""
        rows = list(self.db.query("SELECT run_id, name FROM runs ORDER BY created"))
        if any(r["run_id"] == ref for r in rows):
            return ref
        named = [r["run_id"] for r in rows if r["name"] == ref]
        if len(named) == 1:
            return named[0]
        matches = [r["run_id"] for r in rows if r["run_id"].startswith(ref) or r["run_id"].endswith(ref)
                   or (r["name"] or "").startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownRun(f"No run matches '{ref}'; `seca-tui runs` lists the runs.")
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise UnknownRun(f"'{ref}' matches {len(matches)} runs ({shown}); give more of the run id.")

    # --------------------------------------------------------------------- user edits

    def set_tags(self, run_id: str, tags: list[str]) -> None:
        self.update_run(run_id, tags=json.dumps(sorted(set(tags))))

    def set_notes(self, run_id: str, text: str) -> None:
        self.update_run(run_id, notes=text)

    def delete(self, run_id: str) -> None:
        """Forget a run: its rows in every table. Its run dir must be gone from ``runs_dir`` first, or the
        next ingest brings the run back (see housekeeping.remove)."""
        with self._write() as db:
            for table in RUN_TABLES:
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    def set_archived(self, run_id: str, archived: bool) -> None:
        self.update_run(run_id, archived=int(archived))

    def setting(self, key: str, default: Any = None) -> Any:
        """A home-wide setting (JSON value), e.g. ``queue.per_gpu``."""
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        with self._write() as db:
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       [key, json.dumps(value)])

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (the launcher records pid, host and status this way)."""
        with self._write() as db:
            db["runs"].update(run_id, self._checked(fields))

    def _checked(self, fields: dict) -> dict:
        unknown = set(fields) - set(self.db["runs"].columns_dict)
        if unknown:
            raise ValueError(f"runs has no column(s) {sorted(unknown)}")
        return fields


def _typed(value: Any, kind: type) -> Any:
    """``value`` if it is a ``kind`` (an int counts as a float, a bool as neither), else ``None``."""
    if isinstance(value, bool):
        return None
    if kind is float and isinstance(value, int):
        return float(value)
    if kind is int and isinstance(value, int) and not -2**63 <= value < 2**63:
        return None
    return value if isinstance(value, kind) else None


def _section(tree: dict, key: str) -> dict:
    value = tree.get(key)
    return value if isinstance(value, dict) else {}


def _size(path: str | Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def last_log_line(run_dir: Path) -> str | None:
    """The last non-empty line of ``engine.log``: usually why a process died without a final event."""
    try:
        with open(run_dir / "engine.log", "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            lines = [l.strip() for l in f.read().decode(errors="replace").splitlines() if l.strip()]
    except OSError:
        return None
    return lines[-1][:500] if lines else None
