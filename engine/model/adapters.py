"""Bottleneck adapters in parallel with each visual block's MLP (seca-method.md, section 2).

``x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)) + s * up(dropout(relu(down(x))))``
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class Adapter(nn.Module):
    """down (no bias, Kaiming-uniform a=√5) → ReLU → dropout → up (no bias, zero init), scaled by s."""

    def __init__(self, width: int, dim: int, scale: float, dropout: float):
        super().__init__()
        self.down = nn.Linear(width, dim, bias=False)
        self.up = nn.Linear(dim, width, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)  # the adapted model starts equal to CLIP

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.up(self.dropout(torch.relu(self.down(x))))


class AdapterSet(nn.Module):
    """One adapter per visual transformer block."""

    def __init__(self, layers: int, width: int, dim: int, scale: float, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(Adapter(width, dim, scale, dropout) for _ in range(layers))

    def snapshot(self) -> "AdapterSet":
        """A frozen copy in eval mode (dropout off), for the adapter pool."""
        frozen = copy.deepcopy(self).eval()
        frozen.requires_grad_(False)
        return frozen
