"""SE-VPR's refinement of the coarse visual prototypes by text-derived class affinity (seca-method.md §4)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def affinity(z: torch.Tensor, temperature: float = 2 * math.sqrt(512)) -> torch.Tensor:
    """M [K, K] with M_kj = softmax_j(−‖z_k − z_j‖² / temperature), z [K, D] (seca-method.md §4).

    The squared distances come from ‖a‖² + ‖b‖² − 2a·b, which needs no [K, K, D] intermediate for
    200 classes; the clamp removes the tiny negatives that rounding leaves on the diagonal.
    """
    sq = z.pow(2).sum(dim=-1)
    d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * z @ z.T).clamp_min(0)
    return (-d / temperature).softmax(dim=-1)


class RefinementModule(nn.Module):
    """ĉ = normalize(LN_o(M · LN_v(C))) with M = affinity(H·LN_t(t)) over all K seen classes (seca-method.md §4)."""

    def __init__(self, dim: int = 512):
        super().__init__()
        self.ln_t = nn.LayerNorm(dim)
        self.h = nn.Linear(dim, dim, bias=False)
        self.ln_v = nn.LayerNorm(dim)
        self.ln_o = nn.LayerNorm(dim)
        self.temperature = 2 * math.sqrt(dim)

    def forward(self, text_feats: torch.Tensor, coarse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """text_feats [K, D]: t_k^(s) under the current prompt; coarse [K, D]: C = [c_1..c_K] in the
        same class order. Returns (refined ĉ [K, D], L2-normalised; M [K, K])."""
        m = affinity(self.h(self.ln_t(text_feats)), self.temperature)
        refined = F.normalize(self.ln_o(m @ self.ln_v(coarse)), dim=-1)
        return refined, m


def reg_loss(stored: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
    """L_reg = mean over old classes k of (1 − cos(ĉ_k^stored, ĉ_k)) (seca-method.md §4).

    stored [K_old, D] is the bank's prototypes of the old classes (detached here), refined
    [K_old, D] the current module's output for the same classes in the same order.
    """
    if stored.shape != refined.shape or stored.shape[0] == 0:
        raise ValueError(f"need matching non-empty [K_old, D] prototypes, got {tuple(stored.shape)} and {tuple(refined.shape)}")
    return (1 - F.cosine_similarity(stored.detach(), refined, dim=-1)).mean()
