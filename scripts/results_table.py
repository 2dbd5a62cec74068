"""Run the method comparison on a preset over its class orders and write the Last / Avg table.

    python scripts/results_table.py                      # shapes-r demo, 6 methods x 3 orders → README
    python scripts/results_table.py --preset tiny --readme /tmp/README.md --set train.epochs=1

Each (method, trial) is a real engine run (``python -m engine run``) in ``--runs DIR``; a finished
run there is reused, so an interrupted table resumes. The table goes between the markers
``<!-- results:PRESET:start -->`` and ``<!-- results:PRESET:end -->`` of the README, with the
command, the date and the machine. Mean ± sample standard deviation (ddof=1) over the trials.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: the engine package beside it
from engine.config import VARIANTS  # noqa: E402

METHODS = dict(VARIANTS.values())  # row label → overrides


def run_one(preset: str, run_dir: Path, overrides: list[str]) -> dict:
    """The run's `run_finished` event (running it unless a finished one is already there)."""
    events = run_dir / "events.jsonl"
    if events.exists():
        last = json.loads(events.read_text().splitlines()[-1])
        if last["type"] == "run_finished":
            return last
    cmd = [sys.executable, "-m", "engine", "run", preset, "--run-dir", str(run_dir)]
    cmd += [a for o in overrides for a in ("--set", o)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    code = subprocess.run(cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL).returncode
    if not events.exists():  # the config was refused before the run started; the engine said why
        raise SystemExit(f"run {run_dir} did not start (exit {code})")
    last = json.loads(events.read_text().splitlines()[-1])
    if code or last["type"] != "run_finished":
        raise SystemExit(f"run {run_dir} failed ({last.get('error', code)}); see {run_dir / 'engine.log'}")
    return last


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {std:.2f}"


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| method | Last | Avg |", "|---|---|---|"]
    for label, runs in results.items():
        lines.append(f"| {label} | {mean_std([r['last'] for r in runs])} | {mean_std([r['avg'] for r in runs])} |")
    return "\n".join(lines)


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
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "results")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    t0 = time.time()
    results: dict[str, list[dict]] = {}
    for label, overrides in METHODS.items():
        for trial in range(args.trials):
            slug = label.lower().replace(" ", "-").replace("/", "").replace("+", "p")
            run_dir = args.runs / args.preset / f"{slug}-trial{trial}"
            finished = run_one(args.preset, run_dir, overrides + [f"scenario.trial={trial}"] + args.overrides)
            results.setdefault(label, []).append(finished)
            print(f"{label:<18} trial {trial}: Last {finished['last']:.2f}  Avg {finished['avg']:.2f}", flush=True)
    command = "python scripts/results_table.py" + "".join(f" --{k} {v}" for k, v in
                                                          (("preset", args.preset), ("trials", args.trials)) if v not in ("demo", 3))
    command += "".join(f" --set {o}" for o in args.overrides)
    body = (f"{table(results)}\n\n`{command}` — {args.trials} class orders, {datetime.date.today()}, "
            f"{platform.machine()} CPU × {os.cpu_count()}, {(time.time() - t0) / 60:.0f} min in all.")
    print(body)
    write_readme(args.readme, args.preset, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
