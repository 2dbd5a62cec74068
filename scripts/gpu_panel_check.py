"""The GPU panel's view of this machine (seca_tui/gpus.py, through NVML) against nvidia-smi's, while this
process holds 1 GiB on GPU 0. Prints both and what it checked; exits 1 on a mismatch. GPU-only: run by
scripts/gpu_check.sh on a lent GPU machine (the tests use a fake NVML, tests/fake_nvml.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from seca_tui.gpus import NvmlSampler, cells  # noqa: E402


def main() -> int:
    held = torch.empty(2**30, dtype=torch.uint8, device="cuda:0")  # 1 GiB, ours until the end
    torch.cuda.synchronize()
    gpus = NvmlSampler().sample()
    smi = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total,mig.mode.current",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True).stdout
    rows = [[cell.strip() for cell in line.split(",")] for line in smi.strip().splitlines()]
    for gpu in gpus:
        print("panel:", " | ".join(cells(gpu, [])), f"pids {list(gpu.pids)}")
    for row in rows:
        print("nvidia-smi:", " | ".join(row))
    checks = {
        "the same GPUs": [(g.index, g.name) for g in gpus] == [(int(r[0]), r[1]) for r in rows],
        "the same memory (MiB)": [g.mem_total // 2**20 for g in gpus] == [int(r[2]) for r in rows],
        "GPU 0 shows our 1 GiB": gpus[0].mem_used >= held.numel(),
        "utilisation read ('-' under MIG)": all((g.util is None) == (r[3] == "Enabled") for g, r in zip(gpus, rows)),
    }
    for what, ok in checks.items():
        print(f"{what}: {'met' if ok else 'NOT met'}")
    # in a container NVML may list the host's pid for us, which is not os.getpid(): said, not failed
    print(f"our pid {os.getpid()} listed on GPU 0: {'yes' if os.getpid() in gpus[0].pids else 'no (a container shows host pids)'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
