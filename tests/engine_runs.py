"""Run the real engine as a subprocess (``python -m engine run``) and read what it wrote."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


CLASSES = [f"class_{c}" for c in "abcdef"]


POOL_SIZE = 2


def fixture_preset(folder: Path, train_per_class: int = 8, test_per_class: int = 4, epochs: int = 3) -> str:
    """A 3-task preset over a fixture image folder (6 classes) and the tiny random CLIP, deterministic on CPU."""
    from tests.datasets import make_image_folder

    root = make_image_folder(folder / "data", CLASSES, train_per_class=train_per_class, test_per_class=test_per_class)
    path = folder / "e2e.yaml"
    path.write_text(f"""
method: seca
data: {{name: folder, root: {root}}}
scenario: {{n_tasks: 3, seed: 7}}
model: {{name: seca-tiny, pretrained: none}}
train: {{epochs: {epochs}, batch_size: 4, eval_batch_size: 8, milestones: [2], log_every: 1, device: cpu,
        deterministic: true, threads: 1, seed: 3}}
seca: {{pool_size: {POOL_SIZE}}}
""")
    return str(path)


def engine_env(home: Path | None = None) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    if home is not None:
        env["SECA_TUI_HOME"] = str(home)
    return env


def start(config: str, run_dir: Path, *overrides: str, resume: bool = False, home: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "engine", "run", config, "--run-dir", str(run_dir)]
    cmd += [a for o in overrides for a in ("--set", o)]
    if resume:
        cmd.append("--resume")
    return subprocess.Popen(cmd, env=engine_env(home), cwd=REPO, stdin=subprocess.DEVNULL)


def run(config: str, run_dir: Path, *overrides: str, resume: bool = False, home: Path | None = None, timeout: float = 600) -> int:
    return start(config, run_dir, *overrides, resume=resume, home=home).wait(timeout)


def events(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def started(evs: list[dict]) -> dict:
    """The run's first ``run_started``: the start-up's ``phase`` events come before it."""
    return next(e for e in evs if e["type"] == "run_started")


def wait_for(predicate, timeout: float = 120, interval: float = 0.05, describe=None):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds, with
    ``describe()`` (what the processes left behind, say) in the message."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s" + (f"\n{describe()}" if describe else ""))


def log_tails(run_dir: Path, chars: int = 3000) -> str:
    """The end of every engine log of a run (each rank writes its own), for a failing test's message."""
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
                     for log in sorted(Path(run_dir).glob("engine*.log")))


def stop_at(proc: subprocess.Popen, run_dir: Path, predicate, sig=signal.SIGTERM, timeout: float = 300) -> int:
    """Send ``sig`` once an event matches ``predicate``; returns the exit code."""
    wait_for(lambda: any(predicate(e) for e in events(run_dir)) or proc.poll() is not None, timeout)
    proc.send_signal(sig)
    return proc.wait(timeout)


def accuracy_matrix(evs: list[dict]) -> list[list[float]]:
    return [e["task_acc"] for e in evs if e["type"] == "eval"]
