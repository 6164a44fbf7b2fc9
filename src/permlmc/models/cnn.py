"""Shallow CNN (the paper's "Shallow CNN"/``s_conv``, after Neyshabur 2020): a few same-width 3x3 convolutions.

``depth`` convolutions (3x3, stride 1, padding 1, with bias, ReLU) of ``width`` channels each; a 2x2 max-pool
(``ceil_mode=True``) follows each of the first ``min(depth, 3)`` of them, so 8x8 up to 32x32 inputs all end in a
small feature map; then average pooling to a fixed 4x4 grid and a linear head over that grid (written as a 4x4
convolution, so its input channels stay one permutable axis). Global average pooling alone leaves a two-layer
network too weak to fit the data, which would distort the barrier-vs-width trend. The paper's main study uses
depth 2 at width up to 2^10 (§2, Fig. 2); the depth study adds layers of width 2^10 (Fig. 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from permlmc.models.entries import chain, conv
from permlmc.permutation import PermutationSpec

if TYPE_CHECKING:
    from permlmc.models import Architecture

POOLED_LAYERS = 3
"""At most this many leading convolutions are followed by a 2x2 max-pool."""
HEAD_GRID = 4
"""The head sees the last feature map average-pooled to HEAD_GRID x HEAD_GRID."""


class ShallowCNN(nn.Module):
    """State-dict keys ``convs.{i}.weight|bias`` (i = 0..depth-1) and ``head.weight|bias`` (head weight
    ``(classes, width, HEAD_GRID, HEAD_GRID)``)."""

    def __init__(self, in_channels: int, width: int, depth: int, num_classes: int) -> None:
        super().__init__()
        channels = [in_channels] + [width] * depth
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, kernel_size=3, padding=1) for a, b in zip(channels[:-1], channels[1:], strict=True)
        )
        self.pooled = min(depth, POOLED_LAYERS)
        self.head = nn.Conv2d(width, num_classes, kernel_size=HEAD_GRID)

    def forward(self, x: Tensor) -> Tensor:
        h = x  # (N, C, H, W)
        for i, layer in enumerate(self.convs):
            h = torch.relu(layer(h))
            if i < self.pooled:
                h = F.max_pool2d(h, kernel_size=2, ceil_mode=True)  # (N, width, ceil(H/2), ceil(W/2))
        h = F.adaptive_avg_pool2d(h, HEAD_GRID)  # (N, width, 4, 4)
        return self.head(h).flatten(1)  # (N, classes)


def build(arch: Architecture) -> nn.Module:
    return ShallowCNN(arch.input_shape[0], arch.width, arch.depth, arch.num_classes)


def permutation_spec(arch: Architecture, residual: str = "full") -> PermutationSpec:
    """One permutation per convolution (its output channels, and the next layer's input channels).

    ``residual`` is accepted for a uniform registry signature and ignored: this network has no residual stream.
    """
    return PermutationSpec(chain(conv, [f"convs.{i}" for i in range(arch.depth)], "head"))
