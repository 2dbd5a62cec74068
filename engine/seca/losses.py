"""Cross-entropy over the current task's classes (seca-method.md §5)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def current_task_ce(logits_all_seen: torch.Tensor, targets: torch.Tensor, task_offset: int) -> torch.Tensor:
    """CE over the current task's classes: old columns dropped, targets shifted (seca-method.md §5).

    logits_all_seen [B, K_seen] have one column per seen class in order, the current task's last;
    targets [B] index those columns and all are ≥ ``task_offset``, the number of old classes.
    """
    return F.cross_entropy(logits_all_seen[:, task_offset:], targets - task_offset)
