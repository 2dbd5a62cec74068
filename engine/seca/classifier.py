"""Scores of the hybrid classifier and of its ablations (seca-method.md §4, §6).

Deviation from the authors: the hybrid's exponentials subtract each sample's own maximum, not one
maximum over the whole batch. With a batch maximum, a sample's text and visual scores are rescaled
by how confident the *other* samples are, which changes the balance between P_T and P_V and so the
prediction; with the sample's own maximum a prediction never depends on its batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def logits(f: torch.Tensor, weights: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """scale · f wᵀ: f [B, D] against weights [K, D] → [B, K] (or [..., K, D] → [..., B, K]), in
    float32 under autocast too. bf16 keeps about 3 significant digits, too few for logits scaled by up
    to 100 whose small differences the cross-entropies, the distillation's softmax and the hybrid's
    exponentials depend on; a [B, D] × [D, K] product is small next to the encoders it follows."""
    with torch.autocast(f.device.type, enabled=False):
        return scale * f.float() @ weights.float().transpose(-1, -2)


def cosine_logits(f: torch.Tensor, weights: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """scale · cos(f, w_k): f [B, D] against weights [K, D] → [B, K]. Both sides are normalised, so
    centroids and already-normalised features can be passed alike."""
    return logits(F.normalize(f, dim=-1), F.normalize(weights, dim=-1), scale)


def text_scores(f: torch.Tensor, text_feats: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """P_T(k|x) = (1/s) Σ_i exp(scale·f·t_k^(i) − m(x)) (seca-method.md §6); also the `text` classifier.

    f [B, D] normalised image features; text_feats [s, K, D] the seen classes under each of the s
    task prompts. m(x) is ONE number per sample: its maximum over every prompt and every class
    together. (A maximum per prompt would lift each prompt's top class to 1 and change the ranking.)
    """
    scores = logits(f, text_feats, scale)  # [s, B, K]
    return (scores - scores.amax(dim=(0, 2), keepdim=True)).exp().mean(dim=0)


def visual_scores(f: torch.Tensor, protos: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """P_V(k|x) = exp(scale·f·ĉ_k − m'(x)) with m'(x) the sample's own maximum over k (seca-method.md §6)."""
    scores = logits(f, protos, scale)
    return (scores - scores.amax(dim=-1, keepdim=True)).exp()


def hybrid_scores(
    f: torch.Tensor, text_feats: torch.Tensor, protos: torch.Tensor, scale: float = 20.0, fusion: float = 0.5
) -> torch.Tensor:
    """fusion·P_T + (1 − fusion)·P_V over all seen classes (seca-method.md §6); argmax is the prediction.

    f [B, D] normalised; text_feats [s, K, D]; protos [K, D] the stored refined prototypes ĉ.
    """
    return fusion * text_scores(f, text_feats, scale) + (1 - fusion) * visual_scores(f, protos, scale)


def new_linear_head(dim: int, classes: int) -> nn.Linear:
    """The `linear` ablation's head for one task (seca-method.md §6): bias-free, PyTorch's default
    init, trained by CE on cosine logits over the task's classes; at the end of the task its rows are
    normalised and stored frozen, and the hybrid uses them in place of ĉ."""
    return nn.Linear(dim, classes, bias=False)
