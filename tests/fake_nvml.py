"""A FAKE ``pynvml``: the machine these tests run on has no NVIDIA GPU, so the GPU panel and ``seca-tui gpus``
are tested against this stand-in for the NVML calls seca_tui/gpus.py makes (same names, same return shapes
as nvidia-ml-py). The real library is checked on a GPU machine. Tests install it with
``monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.module(...))`` and change a :class:`FakeGpu` between
samples."""
from __future__ import annotations

import types
from dataclasses import dataclass, field

GIB = 2**30


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's own name
    pass


@dataclass
class FakeGpu:
    name: str = "NVIDIA H200"
    util: int | None = 0  # None: the GPU does not report it (MIG), as NVML raises NotSupported
    used: int = 1 * GIB
    total: int = 140 * GIB
    pids: list[int] = field(default_factory=list)


def module(gpus: list[FakeGpu], init_error: str | None = None) -> types.ModuleType:
    """A ``pynvml`` over ``gpus``; ``init_error``: nvmlInit fails with it, as without a driver."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError, nvml.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported

    def init() -> None:
        if init_error:
            raise NVMLError(init_error)

    def utilisation(i: int):
        if gpus[i].util is None:
            raise NVMLError_NotSupported("Not Supported")
        return types.SimpleNamespace(gpu=gpus[i].util, memory=0)

    nvml.nvmlInit = init
    nvml.nvmlDeviceGetCount = lambda: len(gpus)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetName = lambda i: gpus[i].name
    nvml.nvmlDeviceGetUtilizationRates = utilisation
    nvml.nvmlDeviceGetMemoryInfo = lambda i: types.SimpleNamespace(used=gpus[i].used, total=gpus[i].total,
                                                                   free=gpus[i].total - gpus[i].used)
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda i: [types.SimpleNamespace(pid=p, usedGpuMemory=GIB)
                                                           for p in gpus[i].pids]
    return nvml
