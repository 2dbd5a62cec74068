"""SG-AKT's distillation from the aggregated teacher into the adapted student (seca-method.md §3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """L_kd = KL(p_teacher ‖ p_student), averaged over the batch (seca-method.md §3).

    p = softmax over the last dimension of the given logits, which the caller has already scaled
    (kd_scale, 20 by default) and restricted to the current task's classes. The teacher is
    detached, so the gradient reaches the student side only.
    """
    return F.kl_div(
        student_logits.log_softmax(dim=-1),
        teacher_logits.detach().log_softmax(dim=-1),
        reduction="batchmean",
        log_target=True,  # log-probabilities on both sides avoid log(0) for a peaked teacher
    )


def kd_weight(task_number: int) -> float:
    """β = s − 1 for the 1-based task number s: 0 at the first task, 1 at the second (seca-method.md §3)."""
    if task_number < 1:
        raise ValueError(f"task numbers start at 1, got {task_number}")
    return float(task_number - 1)


def mean_pool_feature(V: torch.Tensor) -> torch.Tensor:
    """The `mean` ablation teacher's token: the uniform average (1/P) Σ_p V^(p) of the pool's CLS
    tokens V [B, P, width] → [B, width], to be passed through CLIP's ln_post and proj like o."""
    return V.mean(dim=1)
