"""An example network of your own for the workflow (config/user_model.yaml): a small residual CNN with BatchNorm,
a squeeze-and-excitation gate in each block, and a feature map flattened into its linear head.

The workflow builds it as ``examples.user_model:gated_resnet`` (importable from the repository root) and passes
``width``, ``depth``, ``num_classes`` and ``in_channels`` because the function names them; its permutation spec
is derived from its graph and verified before anything uses it (rule ``check_spec``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GatedBlock(nn.Module):
    """``relu(x + gate(f(x)) * f(x))`` with ``f`` two conv3x3-BatchNorm layers and ``gate`` a squeeze-and-excitation
    gate (global average, a bottleneck of ``channels // 4`` units, a sigmoid per channel)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        self.conv2, self.norm2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        hidden = max(channels // 4, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x)))))  # (N, C, H, W)
        return torch.relu(x + h * self.gate(h))


class GatedResNet(nn.Module):
    def __init__(self, width: int, depth: int, num_classes: int, in_channels: int, grid: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.blocks = nn.Sequential(*(GatedBlock(width) for _ in range(depth)))
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.head = nn.Linear(width * grid * grid, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.pool(self.blocks(self.stem(x)))  # (N, width, grid, grid)
        return self.head(torch.flatten(h, 1))  # each channel's grid x grid inputs move together


def gated_resnet(width: int = 16, depth: int = 1, num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    return GatedResNet(width, depth, num_classes, in_channels)
