"""Data-parallel runs: torchrun with the gloo backend, 2 CPU processes, against 1 process."""
import json
import subprocess
import sys

import pytest

from tests import engine_runs

pytestmark = pytest.mark.slow


def test_two_ranks_match_one_process(tmp_path):
    preset = engine_runs.fixture_preset(tmp_path)
    # dropout off: the only randomness that differs between one process and two ranks
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert engine_runs.run(preset, single, "model.adapter_dropout=0") == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "engine", "run", preset, "--run-dir", str(ddp), "--set", "model.adapter_dropout=0"]
    env = engine_runs.engine_env() | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, cwd=engine_runs.REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    one, two = engine_runs.events(single), engine_runs.events(ddp)
    for a, b in zip(engine_runs.accuracy_matrix(one), engine_runs.accuracy_matrix(two), strict=True):
        assert a == pytest.approx(b, abs=1.0)
    # rank 1 ran (its own log) but wrote no events: one writer, one history
    assert (ddp / "engine.rank1.log").exists()
    assert [e["seq"] for e in two] == list(range(len(two)))
    assert [e["type"] for e in two if e["type"] != "heartbeat"] == [e["type"] for e in one if e["type"] != "heartbeat"]
    assert sum(1 for line in (ddp / "events.jsonl").read_text().splitlines() if json.loads(line)["type"] == "run_started") == 1
    # the same pool decisions on both sides
    pools = lambda evs: [(e["kept"], e["pruned"]) for e in evs if e["type"] == "pool"]  # noqa: E731
    assert pools(one) == pools(two)
