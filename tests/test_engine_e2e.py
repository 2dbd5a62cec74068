"""The real engine end to end: ``python -m engine run`` on a tiny CLIP and a fixture image folder.

3 tasks on CPU with deterministic settings; checks the event stream, the metrics, that CLIP is never
modified, and that a run stopped mid-task and resumed ends with the same accuracy matrix.
"""
import re
import signal

import pytest
import torch
import yaml

from engine import metrics
from engine.config import ModelConfig
from engine.model.clip import load_clip
from engine.train import clip_digest
from tests import engine_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_run(preset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    assert engine_runs.run(preset, run_dir) == 0, (run_dir / "engine.log").read_text()[-3000:]
    return run_dir, engine_runs.events(run_dir)


def test_event_stream_in_order(full_run):
    run_dir, evs = full_run
    types = [e["type"] for e in evs if e["type"] not in ("heartbeat", "log", "phase")]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    assert all(e["v"] == 1 and isinstance(e["ts"], float) for e in evs)
    started = engine_runs.started(evs)
    assert started["tasks"] == [[0, 1], [2, 3], [4, 5]] and len(started["class_names"]) == 6
    # per task: task_started, its steps, the method's reports, eval, checkpoint, task_finished
    for task in range(3):
        block = types[types.index("task_started"):]
        types = block[block.index("task_finished") + 1:]
        body = block[: block.index("task_finished") + 1]
        assert body[0] == "task_started" and body[-3:] == ["eval", "checkpoint", "task_finished"]
        assert body[1:1 + 12] == ["step"] * 12  # 2 classes × 8 images / batch 4 × 3 epochs
        reports = body[13:-3]
        assert reports == (["affinity", "pool"] if task == 0 else ["affinity", "relevance", "pool"])
    assert types == ["run_finished"]
    step = next(e for e in evs if e["type"] == "step")
    assert {"ce_text", "ce_visual", "total"} <= set(step["losses"]) and step["steps_total"] == 12
    for e in evs:
        if e["type"] == "checkpoint":
            assert (run_dir / e["path"]).is_file() and len(e["sha256"]) == 64


def test_phase_events_say_what_the_engine_does_before_run_started_and_around_each_task(full_run):
    """Start-up (the data, CLIP) runs before run_started, and each task is built and evaluated without
    step events: a phase event opens each of these stretches, its message for people (tasks from 1)."""
    _, evs = full_run
    shown = [(e["type"], e.get("phase"), e.get("task")) for e in evs
             if e["type"] in ("phase", "run_started", "task_started", "eval")]
    assert shown[:3] == [("phase", "data", None), ("phase", "model", None), ("run_started", None, None)]
    for task in range(3):
        i = shown.index(("task_started", None, task))
        assert shown[i + 1:i + 4] == [("phase", "task", task), ("phase", "eval", task), ("eval", None, None)]
    messages = [e["message"] for e in evs if e["type"] == "phase"]
    assert messages[:3] == ["preparing dataset folder", "loading model seca-tiny",
                            "building task 1: decoding images, caching features"]


def test_the_resolved_activation_is_recorded(full_run):
    """model.quick_gelu: auto resolves (seca-tiny's config says QuickGELU) and config.yaml and the
    run_started event record what ran, so a resume or a reader never has to guess."""
    run_dir, evs = full_run
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["quick_gelu"] == "true"
    started = engine_runs.started(evs)
    assert started["config"]["model"]["quick_gelu"] == "true"
    assert started["env"]["activation"] == "QuickGELU" and "seca-tiny" in started["env"]["activation_from"]


def test_metrics_agree_with_eval_events(full_run):
    _, evs = full_run
    evals = [e for e in evs if e["type"] == "eval"]
    for e in evals:
        weighted = sum(a * n for a, n in zip(e["task_acc"], e["task_n"])) / sum(e["task_n"])
        assert e["acc"] == pytest.approx(weighted)
        assert e["task_n"] == [8] * (e["after_task"] + 1)  # 2 classes × 4 test images per task
    finished = evs[-1]
    expected = metrics.summary([e["task_acc"] for e in evals], evals[-1]["task_n"])
    for key in ("last", "avg", "forgetting", "bwt"):
        assert finished[key] == pytest.approx(expected[key])


def test_clip_weights_untouched(full_run):
    _, evs = full_run
    before = engine_runs.started(evs)["env"]["clip_sha256"]
    assert evs[-1]["clip_sha256"] == before
    # the digest is of the real model: rebuilding it the engine's way gives the same bytes
    torch.manual_seed(3)
    clip = load_clip(ModelConfig(name="seca-tiny", pretrained="none"), torch.device("cpu"))
    assert clip_digest(clip.model) == before


def log_lines(run_dir) -> list[str]:
    """engine.log without its timestamps: ``"INFO engine: task 1/3 started: ..."``."""
    return [line.split(" ", 2)[2] for line in (run_dir / "engine.log").read_text().splitlines() if line[:2] == "20"]


def test_engine_log_tells_the_story(full_run):
    """A line per task started and finished (with its A_t, tasks numbered 1…T), per checkpoint and at
    the end; open_clip's model-loading chatter (INFO on the root logger) stays out."""
    run_dir, evs = full_run
    lines = [line for line in log_lines(run_dir) if line.startswith("INFO engine: ")]
    evals = [e for e in evs if e["type"] == "eval"]
    expected = ["starting: seca on folder, 3 tasks, device cpu"]
    for t, e in enumerate(evals):
        expected += [f"task {t + 1}/3 started: 2 classes, 16 training images",
                     f"checkpoint written: checkpoints/task-{t:03d}.pt",
                     f"task {t + 1}/3 finished in <s>: A_{t + 1} = {e['acc']:.2f} %"]
    expected.append(f"run finished: Last {evs[-1]['last']:.2f}, Avg {evs[-1]['avg']:.2f}")
    seconds = re.compile(r"finished in [0-9.]+ s:")
    assert [seconds.sub("finished in <s>:", line.removeprefix("INFO engine: ")) for line in lines] == expected
    assert not any(" root: " in line and line.startswith("INFO") for line in log_lines(run_dir))


def test_stop_then_resume_matches_uninterrupted(preset, full_run, tmp_path):
    _, full_events = full_run
    run_dir = tmp_path / "stopped"
    proc = engine_runs.start(preset, run_dir)
    # SIGTERM during task 2's training: the step finishes, the run stops at task 1's checkpoint
    code = engine_runs.stop_at(proc, run_dir, lambda e: e["type"] == "step" and e["task"] == 2, signal.SIGTERM)
    assert code == 0
    first = engine_runs.events(run_dir)
    assert first[-1]["type"] == "run_stopped" and first[-1]["after_task"] == 1
    assert len(engine_runs.accuracy_matrix(first)) == 2
    stopped_log = log_lines(run_dir)
    assert any(re.fullmatch(r"INFO engine: stop signal received: stopping after step \d+ of task 3", line)
               for line in stopped_log), stopped_log
    assert stopped_log[-1] == "INFO engine: run stopped; resume continues after checkpoints/task-001.pt"
    assert engine_runs.run(preset, run_dir, resume=True) == 0
    assert "INFO engine: resuming after task 2/3 from checkpoints/task-001.pt" in log_lines(run_dir)
    evs = engine_runs.events(run_dir)
    assert [e["seq"] for e in evs] == list(range(len(evs)))  # seq continues across the resume
    assert engine_runs.accuracy_matrix(evs) == engine_runs.accuracy_matrix(full_events)
    assert evs[-1]["type"] == "run_finished" and evs[-1]["last"] == full_events[-1]["last"]
