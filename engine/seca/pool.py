"""The adapter pool 𝒫 with its utility vector U and pruning rule (seca-method.md §3)."""
from __future__ import annotations

from typing import Any, Callable, Literal

import torch
from torch import nn

Prune = Literal["min", "max"]


class AdapterPool:
    """Frozen adapter-set snapshots, each labelled with the task it came from (e.g. "task 3").

    Members are kept oldest first. U holds one utility per member: uniform after
    :meth:`reset_utility`, then a running mean of the batches' relevance once the pool is full.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"the pool capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.members: list[nn.Module] = []
        self.labels: list[str] = []
        self.utility = torch.empty(0, dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def full(self) -> bool:
        return len(self.members) == self.capacity

    def reset_utility(self) -> None:
        """U ← uniform over the current members; done at the start of every task (seca-method.md §3)."""
        n = len(self.members)
        self.utility = torch.full((n,), 1.0 / n if n else 0.0, dtype=torch.float64)

    def update_utility(self, batch_mean_w: torch.Tensor, momentum: float = 0.5) -> None:
        """U ← m·U + (1 − m)·mean_batch(w), only once the pool is full (seca-method.md §3).

        ``batch_mean_w`` [P] is the batch mean of the aggregator's relevance. U follows it onto its
        device, so a GPU training loop does not wait on a copy every step.
        """
        if not self.full:
            return
        if batch_mean_w.shape != (len(self.members),):
            raise ValueError(f"expected relevance of shape ({len(self.members)},), got {tuple(batch_mean_w.shape)}")
        w = batch_mean_w.detach().to(torch.float64)
        self.utility = momentum * self.utility.to(w.device) + (1.0 - momentum) * w

    def add(self, snapshot: nn.Module, label: str, prune: Prune = "min") -> str | None:
        """Append a frozen snapshot; if the pool is full, first drop the member with the lowest
        utility (``min``, the authors' code) or the highest (``max``, the other reading).

        Returns the dropped member's label, or None. Ties go to the oldest member. U is reset to
        uniform afterwards so it always has one entry per member.
        """
        if prune not in ("min", "max"):
            raise ValueError(f"prune must be 'min' or 'max', not {prune!r}")
        pruned = None
        if self.full:
            index = int((self.utility.argmin() if prune == "min" else self.utility.argmax()).item())
            self.members.pop(index)
            pruned = self.labels.pop(index)
        self.members.append(snapshot)
        self.labels.append(label)
        self.reset_utility()
        return pruned

    def state_dict(self) -> dict[str, Any]:
        """Capacity, labels, U and each member's state dict, for a checkpoint."""
        return {
            "capacity": self.capacity,
            "labels": list(self.labels),
            "utility": self.utility.detach().cpu().tolist(),
            "members": [m.state_dict() for m in self.members],
        }

    def load_state_dict(self, state: dict[str, Any], factory: Callable[[], nn.Module]) -> None:
        """Restore from :meth:`state_dict`; ``factory()`` builds an empty adapter set (on the wanted
        device) for each member, which is loaded, put in eval mode and frozen."""
        members = []
        for member_state in state["members"]:
            member = factory()
            member.load_state_dict(member_state)
            members.append(member.eval().requires_grad_(False))
        self.capacity = int(state["capacity"])
        self.members = members
        self.labels = list(state["labels"])
        self.utility = torch.tensor(state["utility"], dtype=torch.float64)
