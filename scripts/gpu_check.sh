#!/usr/bin/env bash
# Everything GPU-only in one call of under 5 minutes on an H200-class machine: the SECA step benchmark
# at the real shapes (train/eval images/s, TFLOP/s against the bf16 peak, data-loading speed, peak
# memory), a full 10-task ImageNet-R-shaped SECA run through the engine, and the goals of issue 6
# (met / NOT met), printed as one table; then the GPU panel's NVML reading against nvidia-smi
# (scripts/gpu_panel_check.py); exits 1 when a goal or a check is not met or the run did not finish.
#
#   bash scripts/gpu_check.sh --fetch-wheels   # here, with a network: open_clip, the two packages it
#                                              # needs and nvidia-ml-py, which the device image lacks, into .whl/
#   bash scripts/gpu_check.sh                  # there (carry .whl); extra arguments go to engine.bench
#
# The table is also written to $OUT/gpu_check.txt when OUT is set (the device tool brings it back).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 nvidia-ml-py==13.615.71)  # pure Python and an abi3 wheel (any CPython ≥ 3.10 on x86-64); the device image has the rest

if [ "${1:-}" = "--fetch-wheels" ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: -d .whl "${WHEELS[@]}"
  ls .whl
  exit 0
fi
if ! python3 -c "import open_clip, pynvml" 2>/dev/null; then
  [ -d .whl ] || { echo "open_clip or nvidia-ml-py is not installed and there is no .whl/: run '$0 --fetch-wheels' first." >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, open_clip; print('torch', torch.__version__, '· open_clip', open_clip.__version__)"
set +e
python3 -m engine.bench --full-run --check-goals "$@" | tee "${OUT:-/tmp}/gpu_check.txt"
code=${PIPESTATUS[0]}
python3 scripts/gpu_panel_check.py | tee -a "${OUT:-/tmp}/gpu_check.txt"
[ "${PIPESTATUS[0]}" = 0 ] || code=1
echo "date: $(date -u +%Y-%m-%d)" | tee -a "${OUT:-/tmp}/gpu_check.txt"
exit "$code"
