"""Multilayer perceptron: flattened input, ``depth`` hidden ReLU layers of ``width`` units, linear head."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from permlmc.models.entries import chain, dense
from permlmc.permutation import PermutationSpec

if TYPE_CHECKING:
    from permlmc.models import Architecture


class MLP(nn.Module):
    """State-dict keys ``hidden.{i}.weight|bias`` (i = 0..depth-1) and ``head.weight|bias``."""

    def __init__(self, in_features: int, width: int, depth: int, num_classes: int) -> None:
        super().__init__()
        sizes = [in_features] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(1)  # (N, C*H*W)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.head(h)  # (N, classes)


def build(arch: Architecture) -> nn.Module:
    return MLP(math.prod(arch.input_shape), arch.width, arch.depth, arch.num_classes)


def permutation_spec(arch: Architecture, residual: str = "full") -> PermutationSpec:
    """One permutation per hidden layer; its units' rows in layer i and columns in layer i+1 (no residual
    streams, so ``residual`` has no effect)."""
    return PermutationSpec(chain(dense, [f"hidden.{i}" for i in range(arch.depth)], "head"))
