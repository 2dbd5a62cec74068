"""Data-parallel runs under torchrun (torch.distributed): who this process is, and the reductions.

One process per GPU; ``torchrun`` sets RANK / WORLD_SIZE / LOCAL_RANK. Without them this is a
single process (world 1) and every helper below is a no-op, so the training loop has one code path.
Rank 0 alone writes events and checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (in place, returned for chaining)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.sum(tensor) / self.world if self.enabled else tensor

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's value everywhere: decisions (pruning, prototypes) must agree on every rank."""
        if self.enabled:
            dist.broadcast(tensor, src=0)
        return tensor

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if it is true on one (a stop request must stop all ranks at the same step)."""
        if not self.enabled:
            return flag
        return bool(self.sum(torch.tensor([int(flag)], device=device)).item())


def from_env() -> Dist:
    return Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def init(device: torch.device) -> Dist:
    """Join the process group when started by torchrun: NCCL on CUDA, gloo on the CPU."""
    d = from_env()
    if d.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=d.rank, world_size=d.world)
    return d


def device_for(name: str, d: Dist) -> torch.device:
    """Each rank drives its own GPU (LOCAL_RANK) when the config says cuda/auto."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", d.local_rank if d.enabled else torch.cuda.current_device())
    if name == "auto":
        return torch.device("cpu")
    return torch.device(name)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
