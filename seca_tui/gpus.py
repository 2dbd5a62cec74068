"""The machine's NVIDIA GPUs for the GPU panel (TUI) and ``seca-tui gpus``: utilisation, memory used/total
and which run holds each one, read through NVML (nvidia-ml-py's ``pynvml``, imported on first use).

A :class:`GpuSampler` is anything with ``sample() -> list[Gpu]``: :class:`NvmlSampler` reads NVML; without
it (no driver, no package, no GPU) opening one raises :class:`GpuUnavailable` with the reason. A run holds
a GPU when NVML lists one of its processes there: the engine's recorded pid, or a torchrun rank whose
command line names the run dir. A running run none of whose processes NVML shows (NVML in a container sees
the host's pids) holds the devices the store recorded for it (``device``: "0,1").
:class:`GpuMonitor` keeps the last minutes of samples; NVML calls and store reads block, so it is called
from a store thread, never the UI thread.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from seca_tui.process import HOST, arguments

if TYPE_CHECKING:
    from seca_tui.store import Store

SAMPLE_S = 2.0  # the least time between two samples, however often the caller asks
HISTORY = 150  # samples kept per GPU: the last five minutes at SAMPLE_S
HEADERS = ["gpu", "name", "util", "memory", "runs"]


class GpuUnavailable(Exception):
    """NVML cannot be used here; ``str()`` says why in a few words."""


@dataclass(frozen=True)
class Gpu:
    index: int  # NVML's index: the number nvidia-smi shows, and so the queue's device names
    name: str
    util: int | None  # percent of the last sample period a kernel ran; None where NVML does not say (MIG)
    mem_used: int  # bytes
    mem_total: int
    pids: tuple[int, ...]  # compute processes, as NVML sees them


class GpuSampler(Protocol):
    def sample(self) -> list[Gpu]:
        """Every GPU now; raises GpuUnavailable when NVML stops answering."""


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)  # bytes before nvidia-ml-py 11.5


class NvmlSampler:
    """NVML's view; ``nvml`` is the ``pynvml`` module (tests pass a fake one)."""

    def __init__(self, nvml=None) -> None:
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError:
                raise GpuUnavailable("nvidia-ml-py is not installed") from None
        self.nvml = nvml
        try:
            nvml.nvmlInit()
            self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            self.names = [_text(nvml.nvmlDeviceGetName(h)) for h in self.handles]
        except nvml.NVMLError as error:
            raise GpuUnavailable(str(error)) from None
        if not self.handles:
            raise GpuUnavailable("the driver lists no GPU")

    def sample(self) -> list[Gpu]:
        try:
            return [self._read(i, handle, name) for i, (handle, name) in enumerate(zip(self.handles, self.names))]
        except self.nvml.NVMLError as error:  # a GPU fell off the bus, the driver was unloaded
            raise GpuUnavailable(str(error)) from None

    def _read(self, index: int, handle, name: str) -> Gpu:
        nvml = self.nvml
        mem = nvml.nvmlDeviceGetMemoryInfo(handle)
        util = self._optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        procs = self._optional(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle)) or []
        return Gpu(index, name, util, mem.used, mem.total, tuple(p.pid for p in procs))

    def _optional(self, read: Callable):
        """What ``read()`` gives, or None where this GPU does not support it (MIG mode, some drivers)."""
        try:
            return read()
        except self.nvml.NVMLError_NotSupported:
            return None


def holders(gpus: list[Gpu], runs: list[dict],
            args_of: Callable[[int], list[str]] = arguments) -> dict[int, list[dict]]:
    """The runs on each GPU, by index: ``runs`` are the running runs of this host (store rows)."""
    held: dict[int, list[dict]] = {gpu.index: [] for gpu in gpus}
    placed: set[str] = set()
    for gpu in gpus:
        for pid in gpu.pids:
            args = args_of(pid)
            run = next((r for r in runs if r.get("pid") == pid or (r.get("run_dir") and r["run_dir"] in args)), None)
            if run is not None and run not in held[gpu.index]:
                held[gpu.index].append(run)
                placed.add(run["run_id"])
    for run in runs:
        if run["run_id"] not in placed:
            for device in str(run.get("device") or "").split(","):
                if device.strip().isdigit() and int(device) in held:
                    held[int(device)].append(run)
    return held


def gib(n: int) -> str:
    return f"{n / 2**30:.1f}"


def cells(gpu: Gpu, runs: list[dict]) -> list[str]:
    """One GPU as the table's cells (:data:`HEADERS`)."""
    names = ", ".join(r.get("name") or r["run_id"] for r in runs)
    return [str(gpu.index), gpu.name.removeprefix("NVIDIA "), "-" if gpu.util is None else f"{gpu.util}%",
            f"{gib(gpu.mem_used)}/{gib(gpu.mem_total)} GiB", names or "-"]


def unavailable_line(reason: str) -> str:
    return f"no NVIDIA GPU: NVML not available ({reason})"


@dataclass(frozen=True)
class GpuRow:
    """One GPU as last sampled, the runs on it, and its recent history (oldest first)."""

    gpu: Gpu
    runs: list[dict]
    util: tuple[int | None, ...]
    mem: tuple[float, ...]  # share of the memory in use, 0–1


class GpuMonitor:
    """The GPUs' last minutes. :meth:`sample` (a store thread) replaces :attr:`rows` whole, so the UI
    thread reads a consistent list without a lock; :attr:`unavailable` is the reason NVML cannot be read."""

    def __init__(self, open_sampler: Callable[[], GpuSampler] = NvmlSampler) -> None:
        self._open = open_sampler
        self._sampler: GpuSampler | None = None
        self._history: dict[int, deque[tuple[int | None, float]]] = {}
        self._at = float("-inf")
        self.rows: list[GpuRow] = []
        self.unavailable: str | None = None

    def sample(self, store: Store) -> None:
        """Take a sample unless one was taken less than :data:`SAMPLE_S` ago, or NVML cannot be read."""
        now = time.monotonic()
        if self.unavailable is not None or now - self._at < SAMPLE_S * 0.9:  # the poll's own jitter
            return
        self._at = now
        try:
            self._sampler = self._sampler or self._open()
            gpus = self._sampler.sample()
        except Exception as error:  # noqa: BLE001 - a broken binding must not end the store poll it runs in
            known = isinstance(error, GpuUnavailable)
            self.unavailable, self.rows = str(error) if known else f"{type(error).__name__}: {error}", []
            return
        runs = [r for r in store.runs(status="running", include_archived=True) if r.get("host") in (None, HOST)]
        held = holders(gpus, runs)
        rows = []
        for gpu in gpus:
            history = self._history.setdefault(gpu.index, deque(maxlen=HISTORY))
            history.append((gpu.util, gpu.mem_used / gpu.mem_total if gpu.mem_total else 0.0))
            rows.append(GpuRow(gpu, held[gpu.index], tuple(u for u, _ in history), tuple(m for _, m in history)))
        self.rows = rows
