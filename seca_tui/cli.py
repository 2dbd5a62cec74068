"""The ``seca-tui`` command: the TUI without a command, and scriptable commands for everything else.

Tables are for people, ``--json`` for scripts. A user mistake prints one sentence on stderr and
exits non-zero, without a traceback. Every command brings the run log up to date first (ingest,
lost-run check), so what it prints is what the run dirs say now. Nothing here imports torch,
except ``data check``, which has to read a dataset.
"""
from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional

import typer

from engine import config
from engine.config import ConfigError
from engine import paths
from seca_tui import export, launcher, progress, queue, run_filter, table_fit, tasks
from seca_tui import slurm as slurm_module
from seca_tui.commands.slurm_flags import SlurmRequest, slurm_flags, submit as submit_to_slurm
from seca_tui.export import run_record
from seca_tui.store import ACTIVE, FINAL, STATUSES, Store

app = typer.Typer(
    name="seca-tui",
    help="Launch, watch, compare and export SECA continual-learning runs. Without a command: the TUI.",
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Typer's rich panels print a <bool> after every flag
)

OverrideOpt = typer.Option(None, "--set", metavar="KEY=VALUE", help="Override a config key, e.g. train.epochs=3 (repeatable).")


def main() -> None:
    """The CLI: ``seca-tui`` with arguments (seca_tui/entry.py)."""
    app(prog_name="seca-tui")


def _die(message: str, code: int = 1) -> None:
    typer.echo(f"error: {sentence(message)}", err=True)
    raise typer.Exit(code)


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (or its own ``?`` or ``!``): messages that quote an error
    or a log line ending in one printed ``..``."""
    text = text.rstrip()
    while text.endswith(".."):
        text = text[:-1]
    return text if text.endswith((".", "?", "!")) else text + "."


def _output_gone(starts_runs: bool) -> None:
    """Our output was closed (``| head``) or its terminal hung up (an SSH drop): say so if stderr still
    can, keep Python's exit flush quiet, exit 1. The runs go on; the engine never writes to our output
    (said only by the commands that start or follow runs)."""
    note = "; any run started keeps running (`seca-tui runs`)" if starts_runs else ""
    try:
        sys.stderr.write(f"error: the output closed{note}.\n")
        sys.stderr.flush()
    except OSError:
        pass  # stderr went with it: the same terminal
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):  # what is still buffered for them goes nowhere, quietly
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    raise typer.Exit(1)


def command(group: typer.Typer = app, name: str | None = None, **settings: Any) -> Callable:
    """``group.command`` (``settings`` passed on) whose user mistakes become one sentence on stderr and exit code 1."""
    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except ConfigError as e:
                _die(str(e))
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EIO) and e.filename is None:
                    _output_gone(fn.__name__ in ("run", "attach", "resume", "sweep"))
                # an unwritable export file, a full disk: the user can act on it
                _die(f"{e.filename or 'seca-tui'}: {e.strerror or e}.")
            except sqlite3.Error as e:  # a full disk or a read-only home under the run log
                _die(f"The run log {paths.home() / 'runs.db'} cannot be used: {str(e).rstrip('.')}.")
        return group.command(name, **settings)(guarded)
    return register


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", envvar="SECA_TUI_HOME", help="Where runs.db and runs/ live."),
) -> None:
    if home is not None:
        # Through the environment so engine processes we start (data roots) and the TUI agree on it.
        os.environ["SECA_TUI_HOME"] = str(home.expanduser().resolve())
    if ctx.invoked_subcommand is None:
        from seca_tui.entry import tui

        tui()


def _store() -> Store:
    """The store, brought up to date with every run dir; unreadable lines are reported, not fatal."""
    try:
        store = Store.open()
    except OSError as e:
        _die(f"Cannot open the run log in {e.filename or 'the home folder'}: {e.strerror or e}.")
    for run_id, report in store.ingest_all().items():
        if report.bad_lines:
            typer.echo(f"warning: run {run_id}: events.jsonl line(s) {_numbers(report.bad_lines)} are not "
                       "events and were skipped.", err=True)
        if report.newer_lines:
            typer.echo(f"warning: run {run_id}: line(s) {_numbers(report.newer_lines)} come from a newer engine; "
                       "upgrade seca-tui to read them.", err=True)
    store.mark_lost()
    # Every command gives the queue a turn: runs whose devices freed up start now, and a background
    # scheduler is (re)started while some wait (after a reboot, say).
    queue.schedule(store)
    if queue.pending(store):
        queue.ensure_scheduler()
    return store


def _numbers(items: list[int]) -> str:
    return ", ".join(map(str, items[:10])) + (", ..." if len(items) > 10 else "")


# ----------------------------------------------------------------------------------------- formatting

def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    """Left-aligned columns two spaces apart; numbers as given."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def _json_list(texts: Iterable[str]) -> None:
    """A JSON list of items already encoded (by json's C encoder: with indent= it falls back to the Python
    one, which took seconds for ten thousand runs), an item a line. Written item by item: joined first,
    the 24 MB of ten thousand runs were copied several times over."""
    out = sys.stdout  # looked up now: a test runner may have replaced it
    out.write("[")
    for i, text in enumerate(texts):
        if i:
            out.write(",\n ")
        out.write(text)
    out.write("]\n")
    out.flush()  # a closed output fails here, inside the command, which says so in one sentence


def _metrics_table(store: Store, run: dict) -> None:
    """Per-task metrics so far, then the final numbers (as far as the run got)."""
    rows = [[tasks.number(r["task"]), _num(r["acc"]), _num(r["avg_acc"]), _num(r["forgetting"]), _num(r["bwt"]),
             _num(r["seconds"], 1), _num(r["ips"], 0)] for r in store.task_rows(run["run_id"])]
    if rows:
        _table(["task", "A_t", "avg", "forgetting", "bwt", "seconds", "img/s"], rows)
    typer.echo(f"Last {_num(run['last'])}  Avg {_num(run['avg'])}  Forgetting {_num(run['forgetting'])}  "
               f"BWT {_num(run['bwt'])}")


# ----------------------------------------------------------------------------------------- run & follow

@command()
@slurm_flags
def run(
    preset: str = typer.Argument("demo", help="Preset name (see `seca-tui presets`) or a YAML file."),
    overrides: Optional[List[str]] = OverrideOpt,
    name: Optional[str] = typer.Option(None, "--name", help="A name to find the run by."),
    tags: List[str] = typer.Option([], "--tag", metavar="TAG", help="Tag the run(s) (repeatable)."),
    gpus: Optional[str] = typer.Option(None, "--gpus", metavar="N|LIST",
                                       help="Data-parallel over N processes (torchrun), or over the listed GPUs "
                                            "(e.g. 0,1: sets CUDA_VISIBLE_DEVICES). With train.device=cpu, N CPU ranks."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Start and return; print the run id(s) on the last line(s)."),
    in_queue: bool = typer.Option(False, "--queue", "-q", help="Wait in the run queue for a free device instead of starting now."),
    trials: Optional[str] = typer.Option(None, "--trials", metavar="all|N",
                                         help="Queue one run per trial (class order) of the preset: all, or the first N."),
    per_gpu: Optional[int] = typer.Option(None, "--per-gpu", metavar="N", help="Runs per device at once in the queue (implies --queue; kept for this home; default 1)."),
    slurm: Optional[SlurmRequest] = None,
) -> None:
    """Start a run (or queue runs, or submit them to Slurm); without --detach, follow until they end (Ctrl-C asks whether to stop)."""
    gpu_spec = launcher.parse_gpus(gpus) if gpus is not None else None
    base = config.load(preset, overrides or [])  # the preset's own mistakes first, then its trials
    trial_overrides = _trials(base, trials) if trials is not None else [[]]
    # Everything is checked (dataset root, task plan) before anything is created.
    cfgs = [launcher.prepare(preset, [*(overrides or []), *extra], _trial_name(name or base.name, extra), here=slurm is None)
            for extra in trial_overrides]
    local = slurm is None and not (in_queue or trials is not None or per_gpu is not None)
    if slurm is not None and (in_queue or per_gpu is not None):
        raise ConfigError("--queue and --per-gpu are the local run queue's; with --slurm, Slurm queues the jobs.")
    if slurm is not None and slurm_module.available():
        raise ConfigError(slurm_module.available())
    if not local and slurm is None:
        if per_gpu is not None and per_gpu < 1:
            raise ConfigError("--per-gpu needs at least 1 run per device.")
        queue.check_fits(gpu_spec, queue.devices())
    store = _store()
    if local:
        handle = launcher.create_run(preset, overrides or [], name=name, gpus=gpu_spec, store=store, cfg=cfgs[0], tags=tags)
        launcher.start(handle.run_dir, store=store)
        typer.echo(f"Started run {handle.config.name} ({handle.config.method}, {handle.config.data.name}) "
                   f"in {handle.run_dir}")
        if detach:
            typer.echo(handle.run_id)
        else:
            _follow(store, handle.run_id)
        return
    if per_gpu is not None:
        queue.set_per_gpu(store, per_gpu)
    handles = [launcher.create_run(preset, [*(overrides or []), *extra], name=cfg.name, gpus=gpu_spec, store=store,
                                   cfg=cfg, queued=slurm is None, tags=tags) for cfg, extra in zip(cfgs, trial_overrides)]
    if slurm is not None:
        submit_to_slurm(store, [h.run_dir for h in handles], slurm)
    else:
        started = dict(queue.schedule(store))
        if queue.pending(store):
            queue.ensure_scheduler()
        for h in handles:
            where = f"started on {','.join(started[h.run_id])}" if h.run_id in started else "queued"
            typer.echo(f"Run {h.config.name} ({h.config.method}, {h.config.data.name}) {where}: {h.run_dir}")
    run_ids = [h.run_id for h in handles]
    if detach:
        typer.echo("\n".join(run_ids))
    elif len(run_ids) == 1:
        _follow(store, run_ids[0])
    else:
        _follow_many(store, run_ids)


def _trials(cfg: config.Config, trials: str) -> list[list[str]]:
    """``--trials all|N`` → the overrides of each trial's run."""
    total = cfg.scenario.trials
    if trials == "all":
        count = total
    elif trials.isdigit() and int(trials) >= 1:
        count = int(trials)
        if count > total:
            raise ConfigError(f"--trials {count} asks for more trials than the preset defines ({total}, "
                              "config key 'scenario.trials').")
    else:
        raise ConfigError(f"--trials takes 'all' or a count like 3, not '{trials}'.")
    return [[f"scenario.trial={k}"] for k in range(count)]


def _trial_name(name: str, extra: list[str]) -> str:
    return f"{name}-trial{extra[0].rsplit('=', 1)[1]}" if extra else name


def _follow_many(store: Store, run_ids: list[str]) -> None:
    """One line per change of any of ``run_ids`` until all have ended, then their metrics."""
    seen: dict[str, str] = {}
    try:
        while True:
            for run_id in run_ids:
                store.ingest(store.run(run_id)["run_dir"])
            store.mark_lost()
            queue.schedule(store)
            runs = [store.run(r) for r in run_ids]
            for r in runs:
                if seen.get(r["run_id"]) != r["status"]:
                    seen[r["run_id"]] = r["status"]
                    where = f" on {r['device']}" if r["status"] == "running" and r["device"] else ""
                    typer.echo(f"{time.strftime('%H:%M:%S')} {r['run_id']} ({r['name']}) {r['status']}{where}")
            if all(r["status"] in FINAL for r in runs):
                break
            time.sleep(progress.POLL_S)
    except KeyboardInterrupt:
        typer.echo("\nThe runs go on; the queue starts the waiting ones. `seca-tui runs` shows them.")
        raise typer.Exit(0)
    _table(["run", "name", "status", "last", "avg", "forgetting", "bwt"],
           [[r["run_id"], r["name"], r["status"], _num(r["last"]), _num(r["avg"]), _num(r["forgetting"]),
             _num(r["bwt"])] for r in runs])
    if any(r["status"] in ("failed", "lost") for r in runs):
        _die("Some runs did not finish; `seca-tui show RUN` says why.")


@command()
def attach(run_ref: str = typer.Argument(..., metavar="RUN", help="Run id, name, or a unique prefix.")) -> None:
    """Follow a run's progress until it ends (Ctrl-C asks whether to stop it)."""
    store = _store()
    _follow(store, store.resolve(run_ref))


def _follow(store: Store, run_id: str) -> None:
    try:
        final = progress.follow(store, run_id)
    except KeyboardInterrupt:
        answer = _ask_stop()
        # the run may have ended while the question waited: answer from what it is now
        store.ingest(store.run(run_id)["run_dir"])
        store.mark_lost()
        final = store.run(run_id)
        if final["status"] in ACTIVE and answer != "s":
            typer.echo(f"Run {run_id} keeps running; `seca-tui attach {run_id}` follows it again.")
            raise typer.Exit(0)
        if final["status"] in ACTIVE:
            launcher.stop(run_id, store)
            typer.echo("Stopping after the current step...")
            try:
                final = progress.follow(store, run_id)
            except KeyboardInterrupt:
                raise typer.Exit(0)  # the stop is under way; nothing more to ask
        else:
            typer.echo(f"Run {run_id} ended meanwhile ({final['status']}); nothing to stop.")
    _metrics_table(store, final)
    if final["status"] in ("failed", "lost"):
        _die(f"Run {run_id} {final['status']}: {final['error'] or 'see engine.log in its run dir'}.")
    typer.echo(f"Run {run_id} {final['status']}.")


def _ask_stop() -> str:
    """One key, no Enter: ``s`` to stop the run, ``l`` to leave it (so do Ctrl-C and Ctrl-D); without a
    terminal to ask on, leave it running."""
    if not sys.stdin or not sys.stdin.isatty():
        return "l"
    import termios
    import tty

    typer.echo("\nStop the run (s) or leave it running (l)? ", nl=False)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)  # keys one at a time; Ctrl-C still interrupts
        while True:
            try:
                key = os.read(fd, 1).decode(errors="ignore").lower()
            except (OSError, KeyboardInterrupt):
                key = "l"
            if key in ("", "\x04"):  # end of input, Ctrl-D
                key = "l"
            if key in ("s", "l"):
                typer.echo(key)
                return key
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@command()
def stop(run_ref: str = typer.Argument(..., metavar="RUN", help="Run id, name, or a unique prefix.")) -> None:
    """Ask a run to stop after its current step (it can be resumed); a queued run is cancelled."""
    store = _store()
    run_id = store.resolve(run_ref)
    if launcher.stop(run_id, store) == "cancelled":
        typer.echo(f"Run {run_id} was queued; it is cancelled.")
    else:
        typer.echo(f"Asked run {run_id} to stop; it stops after the current step.")


@command()
def cancel(run_refs: List[str] = typer.Argument(..., metavar="RUN", help="Queued runs (ids, names or unique prefixes).")) -> None:
    """Take queued runs out of the queue before they start."""
    store = _store()
    for run_id in dict.fromkeys(store.resolve(r) for r in run_refs):
        launcher.cancel(run_id, store)
        typer.echo(f"Cancelled run {run_id}.")


@command(name="queue")
def queue_cmd(
    per_gpu: Optional[int] = typer.Option(None, "--per-gpu", metavar="N", help="Runs per device at once (kept for this home)."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Serve the queue from a background process and return."),
    once: bool = typer.Option(False, "--once", help="Start what fits now and return."),
    poll: float = typer.Option(queue.POLL_S, "--poll", metavar="SECONDS", help="How often to look for free devices."),
    background: bool = typer.Option(False, "--background", hidden=True),
) -> None:
    """Show the run queue and start queued runs as devices free up, until none is waiting."""
    store = Store.open()  # not _store(): that would start a background scheduler of its own
    if per_gpu is not None:
        queue.set_per_gpu(store, per_gpu)
    if background:
        queue.serve(store, poll, lock=queue.lock_path())
        return
    store.ingest_all()
    store.mark_lost()
    available = queue.devices()
    running = store.runs(status="running", include_archived=True)
    typer.echo(f"Devices: {', '.join(available)} ({queue.per_gpu(store)} run(s) per device); "
               f"{queue.pending(store)} queued, {len(running)} running.")
    if detach:
        started = queue.ensure_scheduler(poll=poll)
        typer.echo("Started a background scheduler." if started else "A background scheduler is already running.")
        return
    if once:
        for run_id, chosen in queue.schedule(store):
            typer.echo(f"started {run_id} on {','.join(chosen)}")
        return
    try:
        queue.serve(store, poll)
    except KeyboardInterrupt:
        raise typer.Exit(0)
    typer.echo("Nothing is queued.")


@command()
@slurm_flags
def resume(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id, name, or a unique prefix."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Start and return; print the run id on the last line."),
    in_queue: bool = typer.Option(False, "--queue", "-q", help="Wait in the run queue for a free device instead of resuming now."),
    slurm: Optional[SlurmRequest] = None,
) -> None:
    """Continue a stopped, failed or lost run after its last checkpoint (a Slurm run: as a new job, with its options and any given here)."""
    store = _store()
    run_id = store.resolve(run_ref)
    if slurm is not None or store.run(run_id)["slurm_job"]:
        if in_queue:
            raise ConfigError("--queue is the local run queue's; a Slurm run resumes in Slurm's queue.")
        launcher.resume(run_id, store, slurm_given=slurm.given if slurm else {})
        typer.echo(f"Resubmitted run {run_id} to Slurm as job {store.run(run_id)['slurm_job']}.")
    elif in_queue:
        started = queue.resume(store, run_id)
        typer.echo(f"Run {run_id} resumed on {','.join(started)}." if started else f"Run {run_id} queued to resume.")
    else:
        launcher.resume(run_id, store)
        typer.echo(f"Resumed run {run_id}.")
    if detach:
        typer.echo(run_id)
    else:
        _follow(store, run_id)


# ----------------------------------------------------------------------------------------- browse

@command()
def runs(
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status: " + ", ".join(STATUSES) + "."),
    archived: bool = typer.Option(False, "--archived", help="Include archived runs."),
    tags: List[str] = typer.Option([], "--tag", metavar="TAG", help="Only runs with this tag (repeatable: all of them)."),
    methods: List[str] = typer.Option([], "--method", metavar="M", help="Only this method or variant (repeatable: any)."),
    wheres: List[str] = typer.Option([], "--where", metavar="KEY=VALUE", help="Only runs whose config has it, e.g. train.lr=1e-3."),
    as_json: bool = typer.Option(False, "--json", help="A JSON list with the `export --all` columns."),
) -> None:
    """List runs, newest first."""
    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status must be one of {', '.join(STATUSES)}, not '{status}'.")
    store = _store()
    listed = store.runs(status=status, include_archived=archived, with_config=bool(wheres),  # what --where reads
                        for_records=as_json)
    found = run_filter.filter_runs(listed, tags, methods, wheres)
    if as_json:
        _json_list(map(export.record_text, found))
        return
    if not found:
        typer.echo("No runs match." if tags or methods or wheres else f"No {status} runs." if status
                   else "No runs yet; start one with `seca-tui run`.")
        return
    _table(*table_fit.fit(  # the terminal's width: the less telling columns go first (--json has all)
        ["run", "name", "status", "device", "method", "dataset", "split", "last", "avg", "forgetting", "created"],
        [[r["run_id"], r["name"], r["status"], slurm_module.cell(r) or r["device"] or "-", r["variant"] or "-", r["dataset"] or "-",
          r["split"] or "-", _num(r["last"]), _num(r["avg"]), _num(r["forgetting"]), _when(r["created"])]
         for r in found], shutil.get_terminal_size().columns, drop=("created", "split", "dataset"), cut="name",
        then=("device",)))


@command()
def show(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id, name, or a unique prefix."),
    as_json: bool = typer.Option(False, "--json", help="The `export --all` columns plus `matrix`."),
) -> None:
    """A run's status, metrics per task and accuracy matrix."""
    store = _store()
    run = store.run(store.resolve(run_ref))
    if as_json:
        _json({**run_record(run), "matrix": run["matrix"]})
        return
    pairs = [("run", run["run_id"]), ("name", run["name"]), ("status", run["status"]), ("device", run["device"]),
             ("method", run["variant"]), ("dataset", run["dataset"]), ("split", run["split"]),
             ("created", _when(run["created"])), ("finished", _when(run["finished"])),
             ("run dir", run["run_dir"]), ("tags", ", ".join(run["tags"])), ("notes", run["notes"]),
             ("error", run["error"]), ("slurm", slurm_module.job_line(run, history=True))]
    for key, value in pairs:
        if value:
            typer.echo(f"{key:<9} {value}")
    typer.echo("")
    _metrics_table(store, run)
    from seca_tui.importers import published_of

    published = published_of(run["run_dir"]) if run["status"] == "imported" else None
    if published:  # their forgetting and BWT are not §8's: shown beside ours, never in their place
        names = {"last": "Last", "avg": "Avg", "forgetting": "Forgetting", "bwt": "BWT", "fwt": "FWT"}
        typer.echo("Published " + "  ".join(f"{label} {_num(published.get(k))}" for k, label in names.items()))
    done = [row for row in run["matrix"] if any(a is not None for a in row)]
    if done:
        typer.echo("\naccuracy matrix (row: after task t, column: task i)")
        _table(["t\\i", *[str(tasks.number(i)) for i in range(len(run["matrix"]))]],
               [[tasks.number(t), *[_num(a, 1) for a in row]] for t, row in enumerate(done)])


@command()
def compare(
    run_refs: List[str] = typer.Argument(..., metavar="RUN", help="Two or more runs (ids, names or unique prefixes)."),
    as_json: bool = typer.Option(False, "--json", help="Records, A_t per task and the differing config keys."),
) -> None:
    """Metrics and per-task A_t side by side, plus the config keys that differ."""
    store = _store()
    run_ids = list(dict.fromkeys(store.resolve(r) for r in run_refs))
    if len(run_ids) < 2:
        raise ConfigError("compare needs at least two different runs.")
    chosen = [store.run(r) for r in run_ids]
    records = [run_record(r) for r in chosen]
    accs = {r: [t["acc"] for t in store.task_rows(r)] for r in run_ids}
    keys = sorted({k for rec in records for k in rec if k.startswith("config.")})
    differ = {k: [rec.get(k) for rec in records] for k in keys
              if any(rec.get(k) != records[0].get(k) for rec in records) and k != "config.name"}
    if as_json:
        _json({"runs": records, "acc": accs, "config_diff": differ})
        return
    # the method row shows the variant: an ablation by its own name, not its method's
    rows = [[field.replace("variant", "method"), *[_num(r[field]) if field in ("last", "avg", "forgetting", "bwt")
                                                   else (r[field] or "-") for r in chosen]]
            for field in ("name", "status", "variant", "dataset", "split", "last", "avg", "forgetting", "bwt")]
    longest = max(len(a) for a in accs.values())
    rows += [[f"A_{tasks.number(t)}", *[_num(accs[r][t]) if t < len(accs[r]) else "-" for r in run_ids]] for t in range(longest)]
    _table(*table_fit.share(["", *run_ids], rows, shutil.get_terminal_size().columns))  # long values cut with …
    if differ:
        typer.echo("\nconfig keys that differ")
        _table(*table_fit.share(["key", *run_ids], [[k.removeprefix("config."), *map(_plain, v)] for k, v in differ.items()],
                                shutil.get_terminal_size().columns))


def _plain(value: Any) -> str:
    return "-" if value is None else json.dumps(value) if isinstance(value, (bool, list, dict)) else str(value)


@command(name="export")
def export_cmd(
    run_refs: Optional[List[str]] = typer.Argument(None, metavar="RUN", help="Runs to export (ids, names or unique prefixes)."),
    csv_path: Path = typer.Option(..., "--csv", help="The CSV file to write ('-' for stdout)."),
    table: str = typer.Option("tasks", "--table", help="tasks, matrix, steps or relevance."),
    all_runs: bool = typer.Option(False, "--all", help="One row per run with its flattened config."),
) -> None:
    """Write run logs as CSV: one table over some runs, or every run with --all."""
    if table not in export.TABLES:
        raise ConfigError(f"--table must be one of {', '.join(export.TABLES)}, not '{table}'.")
    if all_runs == bool(run_refs):
        raise ConfigError("export takes either run ids or --all.")
    store = _store()
    if all_runs:
        columns, rows = export.all_runs(store)
    else:
        columns, rows = export.table_rows(store, dict.fromkeys(store.resolve(r) for r in run_refs), table)
    if str(csv_path) == "-":
        export.write_csv(sys.stdout, columns, rows)
        return
    with open(csv_path, "w", newline="") as out:
        count = export.write_csv(out, columns, rows)
    typer.echo(f"Wrote {count} rows to {csv_path}.", err=True)


# ----------------------------------------------------------------------------------------- speed

# ----------------------------------------------------------------------------------------- presets & data

@command()
def presets() -> None:
    """List the presets with their descriptions."""
    rows = []
    for preset in config.preset_names():
        try:
            described = config.load(preset).description
        except ConfigError as e:
            described = f"(invalid: {e})"
        rows.append([preset, described])
    _table(["preset", "description"], rows)


# Commands in their own modules register themselves on `app` when imported.
from seca_tui.commands import importing as _importing, plot as _plot, results as _results, sweep as _sweep  # noqa: E402,F401
from seca_tui.commands import bench as _bench, data as _data, gpus as _gpus, housekeeping as _housekeeping  # noqa: E402,F401
