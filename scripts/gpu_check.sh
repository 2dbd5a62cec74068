#!/usr/bin/env bash
# Everything GPU-only in one call of under 5 minutes on an H200-class machine: the SECA step benchmark
# at the real shapes (train/eval images/s, TFLOP/s against the bf16 peak, data-loading speed, peak
# memory) and a full 10-task ImageNet-R-shaped SECA run, printed as one table.
#
# On a machine without open_clip (the device image has torch but not open_clip), carry its wheels:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl open_clip_torch==3.3.0 ftfy wcwidth
# and call this script with the .whl folder next to the repo root (it installs them to /tmp/site).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import open_clip" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -m engine.bench --full-run "$@"
