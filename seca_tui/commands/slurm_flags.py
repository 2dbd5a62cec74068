"""The ``--slurm`` flags, declared once for every command that submits runs (``run``, ``sweep``).

:func:`slurm_flags` adds them to a command's signature (Typer reads ``__signature__``) and hands the
command one ``slurm`` argument: ``None`` without ``--slurm``, else a :class:`SlurmRequest` with the
options merged over the user config file's ``slurm:`` section.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import typer

from engine.config import ConfigError
from seca_tui import slurm

__all__ = ["SlurmRequest", "slurm_flags", "submit"]

_FLAGS = [
    ("slurm", bool, typer.Option(False, "--slurm", help="Submit to Slurm (through submitit) instead of running here.")),
    ("partition", Optional[str], typer.Option(None, "--partition", metavar="NAME", help="Slurm partition.")),
    ("time", Optional[str], typer.Option(None, "--time", metavar="LIMIT", help="Job time limit (240, 4:00:00, 1-12:00).")),
    ("nodes", Optional[int], typer.Option(None, "--nodes", metavar="N", help="Nodes per job (one torchrun per node).")),
    ("gpus_per_node", Optional[int], typer.Option(None, "--gpus-per-node", metavar="N",
                                                  help="GPUs per node (default: one per engine process; none on the CPU).")),
    ("cpus_per_task", Optional[int], typer.Option(None, "--cpus-per-task", metavar="N", help="CPUs for the job's task.")),
    ("mem", Optional[str], typer.Option(None, "--mem", metavar="SIZE", help="Memory per node, e.g. 32G.")),
    ("account", Optional[str], typer.Option(None, "--account", metavar="NAME", help="Slurm account to charge.")),
    ("qos", Optional[str], typer.Option(None, "--qos", metavar="NAME", help="Slurm quality of service.")),
    ("constraint", Optional[str], typer.Option(None, "--constraint", metavar="FEATURES", help="Node features, e.g. a100.")),
    ("slurm_opt", List[str], typer.Option([], "--slurm-opt", metavar="KEY=VALUE", help="Any other sbatch option (repeatable).")),
    ("max_running", Optional[int], typer.Option(None, "--max-running", metavar="K",
                                                help="With --slurm, at most K jobs of the array at once.")),
]
_NAMES = [name for name, _, _ in _FLAGS]


@dataclass
class SlurmRequest:
    """What ``--slurm`` and its flags asked for."""

    options: slurm.SlurmOptions
    max_running: int | None
    given: dict  # only what the command line said (``extra``: the --slurm-opt pairs), for a resume


def slurm_flags(fn: Callable) -> Callable:
    """Add the Slurm flags to command ``fn``, which takes ``slurm: SlurmRequest | None`` instead."""
    signature = inspect.signature(fn)
    kept = [p for p in signature.parameters.values() if p.name != "slurm"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
             for name, kind, default in _FLAGS]

    @functools.wraps(fn)
    def command(*args, **kwargs):
        given = {name: kwargs.pop(name) for name in _NAMES}
        request = None
        if given.pop("slurm"):
            extra, max_running = given.pop("slurm_opt"), given.pop("max_running")
            said = {k: v for k, v in given.items() if v is not None}
            request = SlurmRequest(slurm.options(extra, **given), max_running, {**said, "extra": slurm.parse_extra(extra)})
        elif any(v not in (None, []) for v in given.values()):
            flag = next(name for name, v in given.items() if v not in (None, []))
            raise ConfigError(f"--{flag.replace('_', '-')} is a Slurm option; add --slurm to submit to Slurm.")
        return fn(*args, slurm=request, **kwargs)

    command.__signature__ = signature.replace(parameters=kept + added)
    # Typer takes the types from the annotations (strings, under `from __future__ import annotations`)
    command.__annotations__ = {**{k: v for k, v in fn.__annotations__.items() if k != "slurm"},
                               **{name: kind for name, kind, _ in _FLAGS}}
    return command


def submit(store, run_dirs: Sequence[Path], request: SlurmRequest) -> list[str]:
    """Submit created runs, one job each or one array for several; says which job holds which run. Should
    Slurm refuse them, the runs are removed again: nothing half-made is left."""
    from seca_tui import housekeeping

    try:
        job_ids = slurm.submit(run_dirs, request.options, store, request.max_running)
    except ConfigError:
        for run_dir in run_dirs:
            housekeeping.remove(store, Path(run_dir).name)
        raise
    array = f" as array job {job_ids[0].split('_')[0]}" if len(job_ids) > 1 else ""
    typer.echo(f"Submitted {len(job_ids)} run(s) to Slurm{array}:")
    for run_dir, job_id in zip(run_dirs, job_ids):
        typer.echo(f"  job {job_id}: {Path(run_dir).name}")
    return job_ids
