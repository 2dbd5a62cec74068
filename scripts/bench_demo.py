"""Time the default job at full size: `seca-tui run`'s demo preset through the real engine.

    python scripts/bench_demo.py            # prints per-task seconds, Last/Avg and the wall time

The goal is under 3 minutes on 2 CPU cores (the figure in the README comes from this script).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
        run_dir = Path(tmp) / "demo"
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", "engine", "run", "demo", "--run-dir", str(run_dir), *sys.argv[1:]],
                              env=env, cwd=REPO).returncode
        wall = time.perf_counter() - t0
        events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    for e in events:
        if e["type"] == "task_finished":
            print(f"task {e['task']:>2}  {e['seconds']:6.1f} s")
    last = events[-1]
    if last["type"] == "run_finished":
        print(f"Last {last['last']:.2f}  Avg {last['avg']:.2f}")
    print(f"wall time {wall:.1f} s on {os.cpu_count()} CPU cores (exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
