"""VGG (Simonyan & Zisserman 2015, configurations A, B, D, E = VGG-11/13/16/19), CIFAR-style, with BatchNorm
(model ``vgg``), LayerNorm over channels (``vgg_ln``) or no normalisation (``vgg_none``) after each convolution
(:mod:`permlmc.models.normalization`).

Five stages of conv3x3-BN-ReLU blocks with ``width``, 2, 4, 8 and 8 times ``width`` channels (the paper uses
``width`` = 64, §2 and App. A.2); a 2x2 max-pool (``ceil_mode=True``) ends every stage, so 32x32 inputs end at
1x1, 28x28 ones at 1x1 too (28 -> 14 -> 7 -> 4 -> 2 -> 1) and smaller ones stay at 1x1 (pooling a 1x1 map is the
identity). Unlike the ImageNet VGG there is no three-layer fully-connected classifier: the last feature map is
averaged over space and a single linear layer maps its ``8 * width`` channels to the classes. The convolutions
have a bias only without normalisation (a BatchNorm or LayerNorm after them has its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from permlmc.axes import Axes
from permlmc.models.entries import dense
from permlmc.models.normalization import conv_norm, conv_norm_axes
from permlmc.permutation import PermutationSpec

if TYPE_CHECKING:
    from permlmc.models import Architecture

CONVS_PER_STAGE: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),  # configuration A
    13: (2, 2, 2, 2, 2),  # configuration B
    16: (2, 2, 3, 3, 3),  # configuration D
    19: (2, 2, 4, 4, 4),  # configuration E
}
"""Convolutions in each of the five stages; depth = their sum + 3 (the original's fully-connected layers)."""

STAGE_MULTIPLIERS = (1, 2, 4, 8, 8)
"""Channels of stage ``s`` = ``STAGE_MULTIPLIERS[s] * width``."""


def block_channels(depth: int, width: int) -> list[tuple[int, bool]]:
    """Per conv block, in order: (output channels, whether a max-pool follows it)."""
    out: list[tuple[int, bool]] = []
    for multiplier, count in zip(STAGE_MULTIPLIERS, CONVS_PER_STAGE[depth], strict=True):
        out += [(multiplier * width, j == count - 1) for j in range(count)]
    return out


class ConvBlock(nn.Module):
    """conv3x3 -> normalisation ``norm`` -> ReLU; keys ``conv.weight`` (and ``conv.bias`` without a norm) and
    ``norm.*``."""

    def __init__(self, in_channels: int, out_channels: int, norm: str | None) -> None:
        super().__init__()
        self.conv, self.norm = conv_norm(in_channels, out_channels, 3, 1, norm)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.norm(self.conv(x)))


class VGG(nn.Module):
    """State-dict keys ``blocks.{i}.conv.weight``, ``blocks.{i}.norm.*`` (BatchNorm: ``weight``, ``bias``,
    ``running_mean``, ``running_var``, ``num_batches_tracked``; LayerNorm: ``weight``, ``bias``; none:
    ``blocks.{i}.conv.bias`` instead; i = 0..depth-4, numbered through all stages) and ``head.weight|bias``."""

    def __init__(self, in_channels: int, width: int, depth: int, num_classes: int, norm: str | None = None) -> None:
        super().__init__()
        layout = block_channels(depth, width)
        channels = [in_channels] + [c for c, _ in layout]
        self.blocks = nn.ModuleList(
            ConvBlock(a, b, norm) for a, b in zip(channels[:-1], channels[1:], strict=True)
        )
        self.pool_after = tuple(pool for _, pool in layout)
        self.head = nn.Linear(channels[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x  # (N, C, H, W)
        for block, pool in zip(self.blocks, self.pool_after, strict=True):
            h = block(h)
            if pool:
                h = F.max_pool2d(h, kernel_size=2, ceil_mode=True)  # (N, c, ceil(H/2), ceil(W/2))
        return self.head(h.mean(dim=(2, 3)))  # (N, 8 * width) -> (N, classes)


def build(arch: Architecture) -> nn.Module:
    return VGG(arch.input_shape[0], arch.width, arch.depth, arch.num_classes, arch.norm)


def permutation_spec(arch: Architecture, residual: str = "full") -> PermutationSpec:
    """One permutation per conv block, named ``blocks.{i}``: output channels of its conv and norm, input
    channels of the next conv (or the head). Pooling acts per channel, so it commutes with the permutation.

    ``residual`` is accepted for a uniform registry signature and ignored: VGG has no residual stream.
    """
    axes: dict[str, Axes] = {}
    previous: str | None = None
    for i in range(len(block_channels(arch.depth, arch.width))):
        axes |= conv_norm_axes(f"blocks.{i}.conv", f"blocks.{i}.norm", previous, f"blocks.{i}", arch.norm)
        previous = f"blocks.{i}"
    axes |= dense("head", previous, None)
    return PermutationSpec(axes)
