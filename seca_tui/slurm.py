"""Slurm: where a run executes when it is submitted with ``--slurm``, through submitit, and through
Slurm's own commands where submitit has no API (the batched state query, cancel, requeue).

- :func:`submit` sends one job per run, or one array job for several (trials, sweeps; ``%K`` from
  ``--max-running``). A run dir's ``slurm/`` folder holds the job script, Slurm's stdout and stderr
  (``<job>_0_log.out``/``.err``) and submitit's pickle; for an array it links to the array's folder,
  ``<home>/slurm/<first run id>/``. The job id is in the run log (``slurm_job``); ``launch.json`` keeps
  every job that ran the run (``slurm.jobs``) and the options it was submitted with (a resume reuses them).
- On the node, submitit runs :class:`EngineJob`: ``python -m engine run`` on the run dir (with
  ``--resume`` once it has events, so a requeued job continues after its last task checkpoint; through
  torchrun for several processes or nodes). Jobs are submitted with ``--signal=USR2@<s>``: before the
  time limit the engine stops after its step and the job requeues itself, as it does after a preemption.
- :func:`refresh` asks Slurm about every job not known to have ended, in one batched query, at most
  every ``POLL_S`` seconds whichever seca-tui process asks (the time of the last query is a home setting):
  ``sacct`` where accounting exists, else ``squeue`` and, for the jobs that ended, ``scontrol show job``.
  It is the owner that decides ``lost``: a job that ended without the run's final event, never a pid.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import yaml

from engine.config import ConfigError
from seca_tui.process import HOST, is_alive

__all__ = ["SlurmOptions", "JobState", "user_options", "options", "available", "submit", "refresh", "stop", "cancel",
           "resubmit", "EngineJob", "parse_sacct", "parse_squeue", "parse_scontrol", "seconds"]

POLL_S = 5.0
POLLED_AT = "slurm.polled_at"  # the home setting that spaces out queries from every process
QUERY_TIMEOUT_S = 30
PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED",
           "STOPPED", "RESIZING"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"}
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE", "SPECIAL_EXIT", "REVOKED", "UNKNOWN"}
RDZV_PORT = 29500
ATTEMPTS = "slurm-attempts.jsonl"  # in the run dir: one line per start of its job


# ----------------------------------------------------------------------------------------- options

@dataclass
class SlurmOptions:
    """Where and how long a job runs; ``None`` leaves the choice to Slurm (the partition's default)."""

    partition: str | None = None
    time: str | None = None  # Slurm's formats: minutes, H:MM:SS, D-HH:MM
    nodes: int = 1
    gpus_per_node: int | None = None  # None: one per engine process, unless the run is on the CPU
    cpus_per_task: int | None = None
    mem: str | None = None  # "32G"
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    signal_delay: int = 120  # seconds before the time limit that the engine is asked to checkpoint
    extra: dict[str, str] = field(default_factory=dict)  # --slurm-opt KEY=VALUE: any other sbatch option

    def merged(self, **given: object) -> "SlurmOptions":
        """These options with every ``given`` value that is not ``None`` put over them."""
        return SlurmOptions(**{**asdict(self), **{k: v for k, v in given.items() if v is not None}})


# The type of each option in the user config file that is not text, and how an error names it.
OPTION_TYPES = {"extra": (dict, "a mapping"), **{key: (int, "a whole number") for key in
                                                 ("nodes", "gpus_per_node", "cpus_per_task", "signal_delay")}}


def config_file() -> Path:
    """``$XDG_CONFIG_HOME/seca-tui/config.yaml`` (``~/.config/seca-tui/config.yaml``): a user's defaults."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "seca-tui" / "config.yaml"


def user_options() -> SlurmOptions:
    """The ``slurm:`` section of the user config file (a lab writes its partition once), checked."""
    path = config_file()
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return SlurmOptions()
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"The config file {path} cannot be read: {str(e).splitlines()[0]}.") from None
    section = tree.get("slurm") if isinstance(tree, dict) else None
    if section is None:
        return SlurmOptions()
    if not isinstance(section, dict):
        raise ConfigError(f"The 'slurm:' section of {path} must be a mapping of option: value.")
    known = {f.name: f for f in fields(SlurmOptions)}
    for key, value in section.items():
        if key not in known:
            raise ConfigError(f"The 'slurm:' section of {path} has an unknown key '{key}'; it takes "
                              f"{', '.join(sorted(known))}.")
        want, what = OPTION_TYPES.get(key, (str, "text"))
        if want is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            section[key] = value = str(value)  # time: 240, mem: 32 read as numbers
        if not isinstance(value, want) or isinstance(value, bool):
            raise ConfigError(f"The 'slurm:' key '{key}' in {path} must be {what}, not {value!r}.")
    section["extra"] = {str(k): str(v) for k, v in section.get("extra", {}).items()}
    return SlurmOptions(**section)


def options(extra: Sequence[str] = (), **given: object) -> SlurmOptions:
    """The options of a submission: the user config file's, then the command line's (``given``, and
    ``extra`` as ``KEY=VALUE`` sbatch options), checked."""
    opts = user_options().merged(**given)
    opts.extra.update(parse_extra(extra))
    if opts.time is not None:
        seconds(opts.time)
    if opts.nodes < 1:
        raise ConfigError("--nodes needs at least 1 node.")
    return opts


def form_options(text: str) -> SlurmOptions:
    """The new-run screen's Slurm field, ``partition=gpu time=4:00:00 mail-type=END``: the options
    (``gpus-per-node`` or ``gpus_per_node``) over the user config file's, any other key an sbatch option."""
    known = {f.name: f for f in fields(SlurmOptions) if f.name != "extra"}
    given, extra = {}, []
    for item in text.split():
        key = item.partition("=")[0].strip().lstrip("-").replace("-", "_")
        if key in known and "=" in item:
            value = item.partition("=")[2].strip()
            if known[key].type in ("int", "int | None") and not value.isdigit():
                raise ConfigError(f"Slurm option {key} takes a whole number, not '{value}'.")
            given[key] = int(value) if value.isdigit() and known[key].type in ("int", "int | None") else value
        else:
            extra.append(item)
    return options(extra, **given)


def parse_extra(items: Sequence[str]) -> dict[str, str]:
    """``--slurm-opt KEY=VALUE`` pairs (``mail-type=END``, ``--exclude=n3``) as sbatch options."""
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise ConfigError(f"--slurm-opt takes KEY=VALUE (an sbatch option, e.g. mail-type=END), not '{item}'.")
        found[key] = value.strip()
    return found


def seconds(text: str) -> int:
    """Slurm's time format (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) in seconds."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise ConfigError(f"--time takes Slurm's format (240, 4:00:00, 1-12:00), not '{text}'.")
    days, a, b, c = match.groups()
    if days is not None:  # D-H[:M[:S]]
        parts = [int(days) * 24 + int(a), int(b or 0), int(c or 0)]
    elif c is not None:  # H:M:S
        parts = [int(a), int(b), int(c)]
    elif b is not None:  # M:S
        parts = [0, int(a), int(b)]
    else:  # M
        parts = [0, int(a), 0]
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def available() -> str | None:
    """Why Slurm cannot be used from here (one sentence), or ``None``."""
    missing = [c for c in ("sbatch", "squeue", "scontrol", "scancel") if shutil.which(c) is None]
    if missing:
        return (f"--slurm needs Slurm's commands on the PATH, and {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not there.")
    return None


# ----------------------------------------------------------------------------------------- the job

class EngineJob:
    """What a job runs on its node (pickled by submitit): the engine on one run dir, which it resumes
    once the run dir has events. SIGTERM (``scancel``, a preemption) reaches the engine, which stops
    after its step; SIGUSR1/2 (the time limit is near) does too, and then the job requeues itself."""

    def __init__(self, run_dir: str, nproc: int = 1) -> None:
        self.run_dir, self.nproc = run_dir, nproc

    def __call__(self) -> int:
        import submitit  # on the node, under submitit's own process

        from seca_tui import launcher

        env = submitit.JobEnvironment()
        run_dir = Path(self.run_dir)
        resume = launcher.has_started(run_dir)
        checkpoints = _checkpoints(run_dir)
        multi_node = env.num_nodes > 1
        command = launcher.engine_command(run_dir, resume, 1 if multi_node else self.nproc)
        if multi_node:  # one torchrun per node, meeting at the first node
            command[1:1] = ["-m", "torch.distributed.run", f"--nnodes={env.num_nodes}", f"--node_rank={env.node}",
                            f"--nproc_per_node={self.nproc}", "--rdzv_backend=c10d",
                            f"--rdzv_endpoint={env.hostnames[0]}:{RDZV_PORT}", f"--rdzv_id={env.job_id}"]
        requeue = []
        with open(run_dir / "engine.log", "ab") as log:
            engine = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      cwd=run_dir, env=launcher.child_env())

        def forward(signum: int, _frame: object) -> None:
            if signum != signal.SIGTERM:
                requeue.append(signum)
            if is_alive(engine.pid, HOST):
                os.kill(engine.pid, signal.SIGTERM)

        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):  # over submitit's handlers
            signal.signal(sig, forward)
        if env.global_rank == 0:
            _record_attempt(run_dir, env.job_id, engine.pid)
        while (code := engine.poll()) is None:
            time.sleep(0.5)
        if requeue and env.global_rank == 0 and code == 0:
            if _checkpoints(run_dir) == checkpoints:  # requeued, it would stop at the same place again
                note = (f"seca-tui: the time limit came before this attempt of job {env.job_id} finished a task, "
                        "so it is not requeued; resume it with a longer --time")
                with open(run_dir / "engine.log", "a") as f:
                    print(note, file=f)
                raise RuntimeError(note)
            # the engine stopped after its last task checkpoint: back into the queue, to resume from it
            print(f"seca-tui: signal {signal.Signals(requeue[0]).name} before the time limit: requeueing job "
                  f"{env.job_id}", flush=True)
            subprocess.run(["scontrol", "requeue", env.job_id], check=True, timeout=QUERY_TIMEOUT_S)
            time.sleep(QUERY_TIMEOUT_S)  # Slurm ends this attempt meanwhile
        if code != 0:
            raise RuntimeError(f"the engine exited with {_exit_text(code)}; see {run_dir / 'engine.log'}")
        return code


def _checkpoints(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").glob("task-*.pt"))


def _exit_text(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"


def _record_attempt(run_dir: Path, job_id: str, pid: int) -> None:
    """One line per start of the job in ``ATTEMPTS`` (only the node writes it; the submitter owns
    ``launch.json``): the run's history says where each attempt ran."""
    line = {"job": job_id, "node": HOST, "pid": pid, "started": time.time(),
            "restart": int(os.environ.get("SLURM_RESTART_COUNT", 0))}
    with open(run_dir / ATTEMPTS, "a") as f:
        f.write(json.dumps(line) + "\n")


# ----------------------------------------------------------------------------------------- submit

def submit(run_dirs: Sequence[Path], opts: SlurmOptions, store, max_running: int | None = None) -> list[str]:
    """Submit each run dir's engine as a job; several as one array job, at most ``max_running`` of them
    at once. Records the job ids (run log, ``launch.json``); returns them in the order given."""
    problem = available()
    if problem:
        raise ConfigError(problem)
    if max_running is not None and max_running < 1:
        raise ConfigError("--max-running needs at least 1 job at once.")
    import submitit

    from seca_tui import launcher

    run_dirs = [Path(d).resolve() for d in run_dirs]
    if len(run_dirs) == 1:
        folder = run_dirs[0] / "slurm"
    else:  # one folder for the array (submitit's layout); each run dir's slurm/ leads to it
        folder = store.path.parent / "slurm" / run_dirs[0].name
        folder.mkdir(parents=True, exist_ok=True)
        for run_dir in run_dirs:
            (run_dir / "slurm").symlink_to(folder, target_is_directory=True)
    launches = [launcher.read_launch(d) for d in run_dirs]
    nproc = launcher.processes(launches[0].get("gpus"))
    on_cpu = all(_train_device(d) == "cpu" for d in run_dirs)
    gpus = opts.gpus_per_node if opts.gpus_per_node is not None else (0 if on_cpu else nproc)
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
    limit = seconds(opts.time) if opts.time else None
    executor.update_parameters(
        job_name=f"seca-{launches[0].get('name') or run_dirs[0].name}"[:64],
        partition=opts.partition, time=None, nodes=opts.nodes, ntasks_per_node=1,
        gpus_per_node=gpus or None, cpus_per_task=opts.cpus_per_task, mem=opts.mem, account=opts.account,
        qos=opts.qos, constraint=opts.constraint, array_parallelism=max_running or len(run_dirs),
        # the warning comes at most half the limit early, so a short job still gets to work
        signal_delay_s=min(opts.signal_delay, limit // 2) if limit else opts.signal_delay,
        additional_parameters={**({"time": opts.time} if opts.time else {}), **opts.extra},
    )
    jobs = [EngineJob(str(d), nproc) for d in run_dirs]
    try:
        if len(jobs) == 1:
            submitted = [executor.submit(jobs[0])]
        else:
            with executor.batch():
                submitted = [executor.submit(job) for job in jobs]
    except subprocess.CalledProcessError as e:
        detail = (e.stderr or e.output or b"").decode(errors="replace").strip().splitlines()
        raise ConfigError(f"sbatch refused the job: {detail[-1] if detail else e}.") from None
    except submitit.core.utils.FailedJobError as e:
        raise ConfigError(f"sbatch refused the job: {str(e).strip().splitlines()[-1]}.") from None
    ids = [job.job_id for job in submitted]
    for run_dir, launch, job_id in zip(run_dirs, launches, ids):
        slurm = launch.setdefault("slurm", {})
        slurm["options"] = asdict(opts)
        slurm["max_running"] = max_running
        slurm.setdefault("jobs", []).append(job_id)
        launcher.write_launch(run_dir, launch)
        store.update_run(run_dir.name, status="queued", slurm_job=job_id, slurm_state="PENDING", slurm_reason=None,
                         queued_at=None, pid=None, host=None, finished=None, error=None, stop_requested=None)
    return ids


def _train_device(run_dir: Path) -> str:
    tree = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    return str((tree.get("train") or {}).get("device") or "auto")


def resubmit(run: dict, store, given: dict | None = None) -> str:
    """Submit a run to Slurm again (``resume``): with the options it was last submitted with (a run
    that ran here: the user config file's), and the ``given`` ones over them (a longer ``time``)."""
    from seca_tui import launcher

    saved = (launcher.read_launch(Path(run["run_dir"])).get("slurm") or {}).get("options")
    known = {f.name for f in fields(SlurmOptions)}
    opts = SlurmOptions(**{k: v for k, v in saved.items() if k in known}) if saved else user_options()
    given = dict(given or {})
    extra = {**opts.extra, **given.pop("extra", {})}
    return submit([Path(run["run_dir"])], SlurmOptions(**{**asdict(opts.merged(**given)), "extra": extra}), store)[0]


# ----------------------------------------------------------------------------------------- stop

def stop(run: dict, store) -> str:
    """``stop``: a pending job is cancelled (``"cancelled"``); a running one gets ``scancel``, whose
    SIGTERM lets the engine finish its step and write ``run_stopped`` (``"stopping"``)."""
    if run["slurm_state"] in PENDING and run["status"] == "queued":
        cancel(run, store)
        return "cancelled"
    store.update_run(run["run_id"], stop_requested=time.time())
    _scancel(run["slurm_job"])
    return "stopping"


def cancel(run: dict, store) -> None:
    """``cancel``: take a run's pending job out of Slurm's queue; the run is ``cancelled``."""
    _scancel(run["slurm_job"])
    # stop_requested: should the job have started meanwhile, its run ends stopped, not lost
    store.update_run(run["run_id"], status="cancelled", finished=time.time(), stop_requested=time.time())


def _scancel(job_id: str) -> None:
    done = subprocess.run(["scancel", job_id], capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    if done.returncode != 0:
        raise ConfigError(f"scancel {job_id} failed: {done.stderr.strip() or done.returncode}.")


# ----------------------------------------------------------------------------------------- state

@dataclass
class JobState:
    """A job as Slurm reports it."""

    job_id: str
    state: str
    reason: str = ""
    node: str = ""
    elapsed: str = ""
    limit: str = ""
    exit_code: str = ""

    def describe(self) -> str:
        """What a person reads beside the run's status: ``PENDING (Resources)``, ``RUNNING on node12``,
        ``TIMEOUT after 04:00:00``, ``FAILED with exit code 1:0``."""
        if self.state in PENDING:
            return f"{self.state} ({self.reason})" if self.reason and self.reason != "None" else self.state
        if self.state in RUNNING:
            return f"{self.state} on {self.node}" if self.node else self.state
        if self.state == "TIMEOUT":
            return f"TIMEOUT after {self.elapsed or self.limit}"
        if self.state == "UNKNOWN":
            return "UNKNOWN: Slurm no longer knows the job"
        if self.state in ("FAILED", "NODE_FAIL", "OUT_OF_MEMORY") and self.exit_code not in ("", "0:0"):
            return f"{self.state} with exit code {self.exit_code}" + (f" on {self.node}" if self.node else "")
        return self.state


def parse_sacct(text: str) -> dict[str, JobState]:
    """``sacct -n -P -X -o JobID,State,Reason,NodeList,Elapsed,Timelimit,ExitCode`` output."""
    jobs = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 7:
            job_id, state, reason, node, elapsed, limit, exit_code = parts[:7]
            jobs[job_id] = JobState(job_id, state.split()[0], reason, node, elapsed, limit, exit_code)
    return jobs


def parse_squeue(text: str) -> dict[str, JobState]:
    """``squeue -h -r --states=all -o %i|%T|%r|%N|%M|%l`` output."""
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 6:
            job_id, state, reason, node, elapsed, limit = parts[:6]
            jobs[job_id] = JobState(job_id, state, reason, node, elapsed, limit)
    return jobs


def parse_scontrol(text: str) -> dict[str, JobState]:
    """``scontrol show job -o`` output (one job per line, ``Key=Value`` pairs); array elements by
    ``ArrayJobId_ArrayTaskId``."""
    jobs = {}
    for line in text.splitlines():
        pairs = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" not in pairs:
            continue
        job_id = pairs["JobId"]
        if pairs.get("ArrayTaskId", "N/A") not in ("N/A", "") and "ArrayJobId" in pairs:
            job_id = f"{pairs['ArrayJobId']}_{pairs['ArrayTaskId']}"
        node = pairs.get("NodeList", "")
        jobs[job_id] = JobState(job_id, pairs.get("JobState", "UNKNOWN"), pairs.get("Reason", ""),
                                "" if node == "(null)" else node, pairs.get("RunTime", ""), pairs.get("TimeLimit", ""),
                                pairs.get("ExitCode", ""))
    return jobs


def _query(command: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None


def query(job_ids: Sequence[str]) -> dict[str, JobState] | None:
    """The states of ``job_ids`` in one batched query; a job Slurm no longer knows is ``UNKNOWN``.
    ``None`` when Slurm cannot be asked (its commands are missing, the controller does not answer)."""
    if not job_ids or available():
        return None
    ids = ",".join(job_ids)
    done = _query(["sacct", "-n", "-P", "-X", "-j", ids, "-o", "JobID,State,Reason,NodeList,Elapsed,Timelimit,ExitCode"])
    if done is not None and done.returncode == 0:  # without accounting sacct says so and fails
        found = parse_sacct(done.stdout)
    else:
        done = _query(["squeue", "-h", "-r", "--states=all", "-j", ids, "-o", "%i|%T|%r|%N|%M|%l"])
        if done is None or (done.returncode != 0 and "Invalid job id" not in done.stderr):
            return None
        found = parse_squeue(done.stdout) if done.returncode == 0 else {}
        # squeue has no exit code, and forgets a job sooner: ask scontrol about those that ended
        if any(found.get(j) is None or found[j].state in ENDED for j in job_ids):
            shown = _query(["scontrol", "show", "job", "-o"])
            if shown is not None and shown.returncode == 0:
                found.update({j: s for j, s in parse_scontrol(shown.stdout).items() if j in job_ids})
    return {j: found.get(j) or JobState(j, "UNKNOWN") for j in job_ids}


def refresh(store, force: bool = False) -> list[str]:
    """Bring Slurm runs up to date with their jobs; returns the ids of runs found lost. At most one
    query every ``POLL_S`` seconds across processes (``force``: now)."""
    rows = list(store.db.query(
        "SELECT run_id, run_dir, status, stop_requested, slurm_job, slurm_state FROM runs "
        f"WHERE slurm_job IS NOT NULL AND (slurm_state IS NULL OR slurm_state NOT IN ({','.join('?' * len(ENDED))}))",
        sorted(ENDED)))
    if not rows:
        return []
    now = time.time()
    if not force and now - (store.setting(POLLED_AT) or 0) < POLL_S:
        return []
    store.set_setting(POLLED_AT, now)
    states = query([r["slurm_job"] for r in rows])
    if states is None:
        return []
    return [r["run_id"] for r in rows if _settle(store, r, states[r["slurm_job"]])]


def _settle(store, row: dict, job: JobState) -> bool:
    """Record ``job``'s state on its run and what it means for the run's status; True when the run is
    found lost (its job ended without the run's final event)."""
    from seca_tui.store import last_log_line

    store.ingest(row["run_dir"])  # a final event written just before the job ended decides first
    status = store.db.execute("SELECT status FROM runs WHERE run_id = ?", [row["run_id"]]).fetchone()[0]
    fields: dict = {"slurm_state": job.state, "slurm_reason": job.describe()}
    asked = bool(row["stop_requested"])
    if job.state in PENDING and status in ("running", "stopped") and not asked:
        fields["status"] = "queued"  # requeued (time limit, preemption): it resumes when it starts again
    elif job.state in RUNNING and status == "queued":
        fields["status"] = "running"  # the engine's run_started follows within seconds
    elif job.state in ENDED and (status in ("queued", "running") or (status == "stopped" and not asked
                                                                      and job.state != "COMPLETED")):
        if asked:
            fields["status"] = "stopped"
        else:
            last = last_log_line(Path(row["run_dir"]))
            fields.update(status="lost", finished=time.time(),
                          error=f"Slurm job {job.job_id} ended {job.describe()}" + (f"; engine.log: {last}" if last else ""))
    store.update_run(row["run_id"], **fields)
    return fields.get("status") == "lost"


def cell(run: dict) -> str | None:
    """``job 123 PENDING``: a Slurm run's job in a table cell; ``None`` for other runs."""
    if not run.get("slurm_job"):
        return None
    return f"job {run['slurm_job']} {run.get('slurm_state') or ''}".rstrip()


def job_line(run: dict, history: bool = False) -> str | None:
    """``Slurm job 123: RUNNING on node12``, for ``show`` and the live screen; ``None`` for other runs.
    ``history``: with every attempt when there was more than one (``; attempts: 12 on n1, 12 on n4``)."""
    if not run.get("slurm_job"):
        return None
    line = f"Slurm job {run['slurm_job']}: {run.get('slurm_reason') or run.get('slurm_state') or 'submitted'}"
    starts = attempts(Path(run["run_dir"])) if history else []
    if len(starts) > 1:
        line += "; attempts: " + ", ".join(f"{a['job']} on {a['node']}" for a in starts)
    return line


def attempts(run_dir: Path) -> list[dict]:
    """Every start of a Slurm run's job: job id, node, engine pid, time, Slurm's restart count."""
    try:
        lines = (Path(run_dir) / ATTEMPTS).read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a node that died mid-write
    return found
