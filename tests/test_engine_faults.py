"""Faults the engine must survive without losing a run: corrupt or foreign checkpoints, a full disk,
unreadable images, running out of GPU memory. Runs the engine in-process (same code as the CLI's
subprocess, without the start-up cost) on the tiny fixture preset."""
import errno
import logging
import shutil
import threading

import pytest
import torch

from engine import checkpoint, config
from engine.learner import SecaLearner
from engine.train import run
from tests import engine_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(preset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    assert run(config.load(preset), run_dir) == 0
    return run_dir


def failure(run_dir):
    last = engine_runs.events(run_dir)[-1]
    assert last["type"] == "run_failed", last
    return last["error"]


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(preset, reference, tmp_path, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    newest = checkpoint.path_for(run_dir, 2)
    newest.write_bytes(newest.read_bytes()[:100])  # truncated by a crash mid-copy
    with pytest.raises(checkpoint.CheckpointError, match=f"{newest}.*corrupt"):
        checkpoint.load(newest)
    caplog.set_level(logging.INFO, logger="engine")
    assert run(config.load(preset), run_dir, resume=True) == 0
    evs = engine_runs.events(run_dir)
    warnings = [e["message"] for e in evs if e["type"] == "log" and e["level"] == "warning"]
    assert any("task-002.pt is corrupt" in w and "earlier checkpoint" in w for w in warnings)
    # engine.log says so too (the "engine" logger is what `python -m engine` writes there), and from where it resumed
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "engine"]
    assert [m for level, m in logged if level == "WARNING"] == [w for w in warnings if "corrupt" in w]
    assert ("INFO", "resuming after task 2/3 from checkpoints/task-001.pt") in logged
    # task 2 was redone from task 1's checkpoint and gives the same numbers
    reruns = [e for e in evs if e["type"] == "eval" and e["after_task"] == 2]
    assert len(reruns) == 2 and reruns[0]["task_acc"] == reruns[1]["task_acc"]
    checkpoint.load(newest)  # rewritten whole


def test_checkpoint_of_another_task_plan_is_refused(preset, reference, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    other = config.load(preset, ["scenario.seed=8"])  # another class order
    assert run(other, run_dir, resume=True) == 2
    error = failure(run_dir)
    assert "task-002.pt" in error and "another model or task plan" in error


def test_full_disk_keeps_the_last_good_checkpoint(preset, tmp_path, monkeypatch):
    real = checkpoint._atomic_write
    calls = {"n": 0}

    def flaky(path, data):
        calls["n"] += 1
        if path.suffix == ".pt" and "task-001" in path.name:
            # what a full disk does: the temp file is half written, then the write fails
            (path.parent / f".{path.name}.tmp").write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint, "_atomic_write", flaky)
    run_dir = tmp_path / "run"
    assert run(config.load(preset), run_dir) == 1
    error = failure(run_dir)
    assert error.startswith("The disk is full while writing") and "task-001.pt" in error
    assert [p.name for p in checkpoint.available(run_dir)] == ["task-000.pt"]
    checkpoint.load(checkpoint.path_for(run_dir, 0))  # the good one verifies
    monkeypatch.setattr(checkpoint, "_atomic_write", real)
    assert run(config.load(preset), run_dir, resume=True) == 0  # space freed: resume finishes
    assert engine_runs.events(run_dir)[-1]["type"] == "run_finished"


def test_unreadable_image_is_skipped_or_stops(preset, tmp_path):
    cfg = config.load(preset)
    root = tmp_path / "data"
    shutil.copytree(cfg.data.root, root)
    broken = sorted((root / "train").glob("*/0.png"))[0]
    broken.write_bytes(broken.read_bytes()[:20])  # a truncated PNG
    skip = config.load(preset, [f"data.root={root}"])
    assert run(skip, tmp_path / "skip") == 0
    evs = engine_runs.events(tmp_path / "skip")
    warnings = [e["message"] for e in evs if e["type"] == "log" and str(broken) in e["message"]]
    assert len(warnings) == 1 and warnings[0].startswith("skipped: Image")  # named once, not per epoch
    assert evs[-1]["type"] == "run_finished"
    stop = config.load(preset, [f"data.root={root}", "data.bad_images=stop"])
    assert run(stop, tmp_path / "stop") == 2
    assert str(broken) in failure(tmp_path / "stop")


def test_out_of_memory_names_the_batch_size(preset, tmp_path, monkeypatch):
    # no GPU here: raise the error CUDA would raise, from inside the training step
    def oom(self, *args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(SecaLearner, "losses", oom)
    assert run(config.load(preset), tmp_path / "run") == 1
    error = failure(tmp_path / "run")
    assert "train.batch_size=4" in error and "--set train.batch_size=2" in error


def test_stop_before_training_starts(preset, tmp_path):
    # SIGTERM during start-up (model loading) stops before the first task instead of being lost
    stop = threading.Event()
    stop.set()
    assert run(config.load(preset), tmp_path / "run", stop=stop) == 0
    last = engine_runs.events(tmp_path / "run")[-1]
    assert (last["type"], last["after_task"]) == ("run_stopped", -1)
