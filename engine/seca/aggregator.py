"""SG-AKT's aggregator: text queries attend over the adapter pool's CLS tokens (seca-method.md §3)."""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

Relevance = Literal["per_query", "pooled"]


def relevance_weights(q: torch.Tensor, k: torch.Tensor, mode: Relevance = "per_query") -> torch.Tensor:
    """Relevance w [B, P] of each pool member for each image, from queries q [B, s, d] and keys k [B, P, d].

    seca-method.md §3. ``per_query`` (the authors' code): A_{i,p} = softmax_p(q_i·k_p/√d) and
    w_p = (1/s) Σ_i A_{i,p}. ``pooled`` (the paper's equation): one softmax over p of the scores
    averaged over i, w_p = softmax_p((1/s) Σ_i q_i·k_p/√d). Both are a distribution over p; with
    s = 1 they coincide.
    """
    scores = q @ k.transpose(-1, -2) / math.sqrt(k.shape[-1])  # [B, s, P]
    if mode == "per_query":
        return scores.softmax(dim=-1).mean(dim=1)
    if mode == "pooled":
        return scores.mean(dim=1).softmax(dim=-1)
    raise ValueError(f"relevance mode must be 'per_query' or 'pooled', not {mode!r}")


class Aggregator(nn.Module):
    """Mixes the pool's CLS tokens by their relevance to the label's text (seca-method.md §3).

    q_i = W_q·LN_q(S^(i)), k_p = W_k·LN_k(V^(p)), v_p = LN_k(V^(p)); o = LN_o(Σ_p w_p v_p), which
    equals LN_o((1/s) Σ_i Σ_p A_{i,p} v_p) for ``per_query`` and LN_o(Σ_p A_p v_p) for ``pooled``.
    The teacher feature is normalize(proj(ln_post(o))) with CLIP's frozen layers (the learner's job).
    """

    def __init__(self, text_dim: int = 512, vision_dim: int = 768):
        super().__init__()
        self.ln_q = nn.LayerNorm(text_dim)
        self.w_q = nn.Linear(text_dim, vision_dim, bias=False)
        self.ln_k = nn.LayerNorm(vision_dim)
        self.w_k = nn.Linear(vision_dim, vision_dim, bias=False)
        self.ln_o = nn.LayerNorm(vision_dim)

    def forward(
        self, S: torch.Tensor, V: torch.Tensor, relevance: Relevance = "per_query"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """S [B, s, text_dim]: t_y^(i) under each task prompt; V [B, P, vision_dim]: the pool's
        L2-normalised pre-ln_post CLS tokens. Returns (o [B, vision_dim], w [B, P])."""
        q = self.w_q(self.ln_q(S))
        v = self.ln_k(V)  # the values share LN_k with the keys, as in the method
        w = relevance_weights(q, self.w_k(v), relevance)
        o = self.ln_o((w.unsqueeze(1) @ v).squeeze(1))
        return o, w
