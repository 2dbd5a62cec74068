"""The default job end to end at reduced size: `demo` with the shipped shapes CLIP, through the CLI's
engine command, fewer images and epochs (the full-size run is timed by scripts/bench_demo.py)."""
import pytest

from engine import config
from tests import engine_runs

pytestmark = pytest.mark.slow


def test_demo_preset_runs_end_to_end(tmp_path):
    cfg = config.load("demo")
    assert (cfg.method, cfg.data.name, cfg.model.name, cfg.scenario.n_tasks) == ("seca", "shapes-r", "seca-shapes", 10)
    run_dir = tmp_path / "demo"
    code = engine_runs.run("demo", run_dir, "data.train_per_class=6", "data.test_per_class=4", "train.epochs=1",
                           home=tmp_path / "home")
    assert code == 0, (run_dir / "engine.log").read_text()[-3000:]
    evs = engine_runs.events(run_dir)
    assert evs[-1]["type"] == "run_finished"
    assert len(engine_runs.accuracy_matrix(evs)) == 10
    assert engine_runs.started(evs)["env"]["clip_sha256"] == evs[-1]["clip_sha256"]
    # the shipped CLIP knows the shapes: far above chance (1 %) after 10 tasks even at this size
    assert evs[-1]["last"] > 10
    relevance = [e for e in evs if e["type"] == "relevance"]
    assert [e["task"] for e in relevance] == list(range(1, 10)) and len(relevance[-1]["cols"]) == 5
