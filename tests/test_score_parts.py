"""scripts/score_parts.py: the hybrid it recomputes from a run's last checkpoint is the run's own
last evaluation, and its parts are scored over the same images."""
import importlib.util

import pytest

from tests import engine_runs

pytestmark = pytest.mark.slow


def _script():
    spec = importlib.util.spec_from_file_location("score_parts", engine_runs.REPO / "scripts" / "score_parts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hybrid_part_is_the_runs_last_evaluation(preset, tmp_path, home):
    run_dir = tmp_path / "run"
    assert engine_runs.run(preset, run_dir) == 0, engine_runs.log_tails(run_dir)
    last_eval = engine_runs.accuracy_matrix(engine_runs.events(run_dir))[-1]
    parts = _script().score_parts(run_dir)
    assert set(parts) == {"P_T", "P_V stored", "hybrid", "P_V frozen means"}
    assert parts["hybrid"] == pytest.approx(last_eval)
    assert all(len(accs) == len(last_eval) for accs in parts.values())
