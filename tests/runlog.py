"""Run dirs for store, CLI and launcher tests, without the engine: events.jsonl written by hand, and
a fake engine (a small script) that speaks the event protocol and handles SIGTERM like the real one."""
from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

from seca_tui import metrics

CONFIG = {"name": "hand", "method": "seca", "data": {"name": "shapes-r"}, "scenario": {"n_tasks": 3},
          "train": {"epochs": 2, "lr": 0.001}}


def line(seq: int, type: str, **fields) -> str:
    return json.dumps({"v": 1, "seq": seq, "ts": round(time.time(), 3), "type": type, **fields}) + "\n"


def run_events(matrix: list[list[float]], counts: list[int], config: dict = CONFIG,
               losses: tuple[str, ...] = ("ce", "kd"), finish: bool = True) -> list[tuple[str, dict]]:
    """(type, fields) of a whole run whose evals give ``matrix`` (A_t sample-weighted by ``counts``)."""
    tasks = [[2 * t, 2 * t + 1] for t in range(len(matrix))]
    out: list[tuple[str, dict]] = [("run_started", {"run_id": "x", "config": config, "tasks": tasks,
                                                    "class_names": [f"c{i}" for i in range(2 * len(matrix))]})]
    accs = []
    for t, row in enumerate(matrix):
        out.append(("task_started", {"task": t, "classes": tasks[t]}))
        for step in range(1, 4):
            out.append(("step", {"task": t, "epoch": 0, "step": step, "steps_total": 3, "lr": 0.1 / step,
                                 "ips": 100.0 + step / 3, "losses": {k: 1.0 / (step + i) for i, k in enumerate(losses)}}))
        acc = sum(a * n for a, n in zip(row, counts)) / sum(counts[: len(row)])
        accs.append(acc)
        out.append(("eval", {"after_task": t, "task_acc": row, "task_n": counts[: len(row)], "acc": acc}))
        out.append(("relevance", {"task": t, "rows": [f"c{c}" for c in tasks[t]],
                                  "cols": [f"task {i}" for i in range(t + 1)],
                                  "values": [[0.1 * (i + 1) + c for i in range(t + 1)] for c in (0, 1)],
                                  "utility": [1.0] * (t + 1)}))
        out.append(("task_finished", {"task": t, "seconds": 1.5 + t}))
    if finish:
        out.append(("run_finished", metrics.summary(matrix, accs)))
    return out


def write_run(runs_dir: Path, run_id: str, events: list[tuple[str, dict]], start_seq: int = 0) -> Path:
    """A run dir with ``events`` appended to its events.jsonl from ``start_seq`` on."""
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "a") as f:
        for seq, (type, fields) in enumerate(events, start=start_seq):
            f.write(line(seq, type, **fields))
    return run_dir


FAKE_ENGINE = textwrap.dedent('''
    """A stand-in engine: run_started, heartbeats, then run_finished; SIGTERM writes run_stopped."""
    import json, os, signal, sys, time

    run_dir, seconds = sys.argv[1], float(sys.argv[2])
    print("processes", sys.argv[3] if len(sys.argv) > 3 else 1, "devices", os.environ.get("CUDA_VISIBLE_DEVICES"),
          "resume" if "--resume" in sys.argv else "fresh", flush=True)
    path = os.path.join(run_dir, "events.jsonl")
    seq = sum(1 for _ in open(path)) if os.path.exists(path) else 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))

    def emit(type, **fields):
        global seq
        with open(path, "a") as f:
            f.write(json.dumps({"v": 1, "seq": seq, "ts": time.time(), "type": type, **fields}) + "\\n")
        seq += 1

    emit("run_started", config={"method": "seca", "data": {"name": "shapes-r"}}, tasks=[[0], [1]])
    print("fake engine up", flush=True)
    end = time.time() + seconds
    while time.time() < end:
        if stop:
            emit("run_stopped", after_task=-1)
            sys.exit(0)
        emit("heartbeat")
        time.sleep(0.05)
    emit("eval", after_task=0, task_acc=[50.0], task_n=[4], acc=50.0)
    emit("run_finished", last=50.0, avg=50.0, forgetting=None, bwt=None)
''')


def fake_engine(tmp_path: Path, seconds: float = 60.0):
    """A replacement for ``launcher.engine_command`` that runs the fake engine for ``seconds``."""
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)

    def command(run_dir: Path, resume: bool = False, nproc: int = 1) -> list[str]:
        return [sys.executable, str(script), str(run_dir), str(seconds), str(nproc), *(["--resume"] if resume else [])]
    return command
