"""The speed benchmark prints its table on the CPU (reduced shape; figures are not asserted)."""
import subprocess
import sys

import pytest

from tests.engine_runs import REPO, engine_env

pytestmark = pytest.mark.slow


def test_bench_prints_its_table():
    done = subprocess.run([sys.executable, "-m", "engine.bench", "--steps", "3"], cwd=REPO, env=engine_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = dict(line.split("  ", 1) for line in done.stdout.strip().splitlines())
    for key in ("train images/s", "eval images/s", "TFLOP per train step", "decode images/s (JPEG → uint8)", "peak memory GiB"):
        assert float(rows[key].strip().rstrip("×")) > 0
    assert rows["device"].strip().startswith("CPU")
