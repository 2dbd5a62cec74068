"""Run the method comparison on a preset over its class orders and write the results table.

    python scripts/results_table.py                      # shapes-r demo, 6 variants x 3 orders → README
    python scripts/results_table.py --preset tiny --readme /tmp/README.md --set train.epochs=1

Each (variant, trial) is a real engine run (``python -m engine run``) in ``HOME/runs/``, ``--jobs``
at a time; a finished run there is reused, so an interrupted table resumes. The table is what
``seca-tui --home HOME results`` prints for those runs, grouped by the switches that make the
variants (engine.config.VARIANTS), and goes between the markers ``<!-- results:PRESET:start -->`` and
``<!-- results:PRESET:end -->`` of the README with the command, the date, the machine and the wall time.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: the packages beside it
from engine.config import VARIANTS  # noqa: E402

METHODS = dict(VARIANTS.values())  # row label → overrides
GROUP_BY = "method,seca.kd,seca.classifier,seca.replay"  # the switches by which the variants differ
METRICS = "last,avg,forgetting"


def slug(label: str) -> str:
    return label.lower().replace(" ", "-").replace("/", "").replace("+", "p")


def finished(run_dir: Path) -> dict | None:
    """The run's `run_finished` event, or None."""
    events = run_dir / "events.jsonl"
    if not events.exists():
        return None
    last = json.loads(events.read_text().splitlines()[-1])
    return last if last["type"] == "run_finished" else None


def run_one(preset: str, run_dir: Path, overrides: list[str]) -> dict:
    """Run the engine into ``run_dir`` unless a finished run is already there; its `run_finished`."""
    done = finished(run_dir)
    if done:
        return done
    cmd = [sys.executable, "-m", "engine", "run", preset, "--run-dir", str(run_dir)]
    cmd += [a for o in overrides for a in ("--set", o)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = subprocess.run(cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL).returncode
    done = finished(run_dir)
    if done is None:
        raise SystemExit(f"run {run_dir} did not finish (exit {code}); see {run_dir / 'engine.log'}")
    return done


def results_markdown(home: Path) -> str:
    """``seca-tui results`` over the runs in ``home`` as a markdown table."""
    cmd = [sys.executable, "-m", "seca_tui", "--home", str(home), "results", "--group-by", GROUP_BY,
           "--metrics", METRICS, "--format", "markdown"]
    out = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"seca-tui results failed: {out.stderr.strip()}")
    return out.stdout.strip()


def write_readme(readme: Path, preset: str, body: str) -> None:
    start, end = f"<!-- results:{preset}:start -->", f"<!-- results:{preset}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} … {end} markers to write the table between.")
    head, rest = text.split(start, 1)
    readme.write_text(head + start + "\n" + body + "\n" + end + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--home", type=Path, default=None, help="seca-tui home of the runs (default runs/results/PRESET)")
    parser.add_argument("--jobs", type=int, default=2, help="engine runs at once (each gets CPU cores / jobs threads)")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    home = args.home or REPO / "runs" / "results" / args.preset
    # threads follow from the jobs, never from the machine's load, so a table is the same when rerun
    threads = f"train.threads={max(1, (os.cpu_count() or 1) // args.jobs)}"

    t0 = time.time()
    jobs = {(label, trial): (home / "runs" / f"{args.preset}-{slug(label)}-trial{trial}",
                             overrides + [f"scenario.trial={trial}", threads] + args.overrides)
            for label, overrides in METHODS.items() for trial in range(args.trials)}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_one, args.preset, run_dir, overrides): key for key, (run_dir, overrides) in jobs.items()}
        for future in concurrent.futures.as_completed(futures):
            (label, trial), done = futures[future], future.result()
            print(f"{label:<18} trial {trial}: Last {done['last']:.2f}  Avg {done['avg']:.2f}", flush=True)
    command = "python scripts/results_table.py" + "".join(f" --{k} {v}" for k, v in
                                                          (("preset", args.preset), ("trials", args.trials)) if v not in ("demo", 3))
    command += "".join(f" --set {o}" for o in args.overrides)
    body = (f"{results_markdown(home)}\n\n`{command}` — {args.trials} class orders, {datetime.date.today()}, "
            f"{platform.machine()} CPU × {os.cpu_count()}, {args.jobs} runs at a time, "
            f"{(time.time() - t0) / 60:.0f} min in all.")
    print(body)
    write_readme(args.readme, args.preset, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
