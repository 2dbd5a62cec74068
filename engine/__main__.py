"""``python -m engine run CONFIG --run-dir DIR [--set k=v]... [--resume]``.

CONFIG is a preset name or a YAML file. The resolved config is written to ``DIR/config.yaml``; on
``--resume`` the run dir's own config.yaml is used, so a resumed run cannot silently change.
stdout/stderr are redirected to ``DIR/engine.log``: the engine never writes to a pipe a UI holds.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from engine.config import ConfigError, load, save
from engine.parent import AgentWatch, under_torchrun


def main(argv: list[str] | None = None) -> int:
    # a stop that arrives while torch is still loading must not kill the process: remember it. SIGUSR1/2
    # are what a Slurm job gets before its time limit or a preemption (seca_tui/slurm.py): the same stop,
    # after which the job is requeued and resumes from the last task checkpoint.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda *_: stop.set())
    agent = os.getppid()  # read first: if torchrun's agent dies later, this rank must notice
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run (or resume) one experiment")
    run_p.add_argument("config", help="preset name or YAML file")
    run_p.add_argument("--run-dir", required=True, type=Path)
    run_p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run_p.add_argument("--resume", action="store_true", help="continue after the last good checkpoint")
    run_p.add_argument("--log-to-stderr", action="store_true", help="keep output on the terminal (debugging)")
    args = parser.parse_args(argv)

    run_dir: Path = args.run_dir
    saved = run_dir / "config.yaml"
    try:
        if args.resume and not saved.is_file():
            raise ConfigError(f"Run dir {run_dir} has no config.yaml to resume from.")
        cfg = load(str(saved), args.overrides) if args.resume else load(args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    run_dir.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", 0))  # torchrun: one process per GPU, rank 0 writes the run's files
    if not args.resume and rank == 0:
        save(cfg, saved)
    if not args.log_to_stderr:
        log = open(run_dir / ("engine.log" if rank == 0 else f"engine.rank{rank}.log"), "a", buffering=1)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
    # the engine's own story at INFO; libraries' (open_clip's model-loading chatter) from WARNING up
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("engine").setLevel(logging.INFO)
    # a rank whose agent is killed stops too, instead of training on orphaned
    watch = AgentWatch(agent, stop, cfg.train.orphan_grace_seconds) if under_torchrun() else None

    from engine.train import run  # torch and open_clip load only once the config is known to be good

    code = run(cfg, run_dir, resume=args.resume, stop=stop)
    if watch is not None:
        watch.gone()
    return code


if __name__ == "__main__":
    sys.exit(main())
