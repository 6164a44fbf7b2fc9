"""ResNets (He et al. 2015), CIFAR-style: ResNet-18/34/50 and the CIFAR ResNet-20/32/44/56, with BatchNorm
(model ``resnet``), LayerNorm over channels (``resnet_ln``) or no normalisation (``resnet_none``) after each
convolution (:mod:`permlmc.models.normalization`), and their permutation spec in two residual modes.

Stem: conv3x3 (stride 1) -> norm -> ReLU with ``width`` channels, no max-pool. Then stages of base widths
``width``, 2, 4, ... times ``width``, the first with stride 1 and the others with stride 2 (on the block's first
3x3 conv): four stages for ResNet-18 and -34 (BasicBlocks, two conv3x3-norm; [2, 2, 2, 2] and [3, 4, 6, 3] blocks)
and ResNet-50 (Bottlenecks, conv1x1-norm, conv3x3-norm, conv1x1-norm expanding 4x; [3, 4, 6, 3] blocks); three
stages of n BasicBlocks for the CIFAR ResNet of depth 6n + 2 (§4.2 of He et al.: ResNet-20 has n = 3). A block adds
its input back before the final ReLU, through a projection (conv1x1 with the block's stride -> norm) when the shape
changes (He et al.'s option B for every depth, as in Git Re-Basin; their CIFAR nets of §4.2 pad with zeros instead,
so ResNet-20 x1 has 272,474 parameters here, 269,722 with their shortcuts). Then global average pooling and a
linear head. Convolutions have a bias only without normalisation. The paper uses ResNet-18 with ``width`` = 64
(App. A.2); the CIFAR ResNet "x k" of Git Re-Basin (Ainsworth et al. 2023) has ``width`` = 16 k.

Residual connections tie permutations (§3.1 permutes hidden units; with a skip ``y = x + f(x)`` the units of
``x`` and ``y`` must be permuted alike). :func:`permutation_spec` offers two choices of which units to permute:

* ``"internal"``: only the channels inside each block (outputs of all but its last conv, with their norm);
  the residual stream — stem, block outputs, projections, head input — keeps its order.
* ``"full"`` (as in Git Re-Basin, Ainsworth et al. 2023): additionally one permutation per residual stream,
  shared by everything that writes to or reads from it: the stem (for stage 0 when no projection separates
  them), every block output of the stage, the stage's projection output, the next stage's inputs.

A norm layer takes the permutation of the convolution it follows, in either mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from permlmc.axes import Axes
from permlmc.model_names import CIFAR_RESNET_DEPTHS
from permlmc.models.entries import dense
from permlmc.models.normalization import conv_norm, conv_norm_axes
from permlmc.permutation import PermutationSpec

if TYPE_CHECKING:
    from permlmc.models import Architecture

STAGES: dict[int, tuple[str, tuple[int, ...]]] = {
    **{depth: ("basic", ((depth - 2) // 6,) * 3) for depth in CIFAR_RESNET_DEPTHS},  # 20: three stages of 3
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
"""Block kind and number of blocks per stage, by depth. Stage ``s`` has base width (``planes``) ``2**s * width``
and stride 1 (``s = 0``) or 2."""

EXPANSION = {"basic": 1, "bottleneck": 4}
"""Block output channels = expansion * planes."""

CONVS = {"basic": 2, "bottleneck": 3}
"""Conv-norm pairs on a block's residual branch."""


@dataclass(frozen=True)
class BlockLayout:
    """One residual block: where it sits, its channel counts and stride."""

    stage: int
    index: int
    kind: str
    in_channels: int
    planes: int
    stride: int

    @property
    def prefix(self) -> str:
        return f"stages.{self.stage}.{self.index}"

    @property
    def out_channels(self) -> int:
        return EXPANSION[self.kind] * self.planes

    @property
    def projection(self) -> bool:
        """Whether the shortcut is a conv1x1-norm projection (shape changes) rather than the identity."""
        return self.stride != 1 or self.in_channels != self.out_channels


def block_layout(depth: int, width: int) -> list[BlockLayout]:
    """Every block of the network, in order; the stem has ``width`` output channels."""
    kind, counts = STAGES[depth]
    blocks: list[BlockLayout] = []
    channels = width
    for stage, count in enumerate(counts):
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            block = BlockLayout(stage, index, kind, channels, 2**stage * width, stride)
            blocks.append(block)
            channels = block.out_channels
    return blocks


class ConvNorm(nn.Module):
    """conv ("same" padding, given stride) -> normalisation ``norm``; keys ``conv.weight`` (and ``conv.bias``
    without a norm) and ``norm.*``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, norm: str | None, stride: int = 1
    ) -> None:
        super().__init__()
        self.conv, self.norm = conv_norm(in_channels, out_channels, kernel_size, stride, norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x))


class ResidualBlock(nn.Module):
    """``relu(branch(x) + shortcut(x))``; branch keys ``conv{k}.weight``, ``norm{k}.*`` (k = 1..2 for a
    BasicBlock, 1..3 for a Bottleneck; ``conv{k}.bias`` without a norm), projection keys ``shortcut.conv.*``,
    ``shortcut.norm.*``."""

    def __init__(self, layout: BlockLayout, norm: str | None) -> None:
        super().__init__()
        planes = layout.planes
        if layout.kind == "basic":  # conv3x3(stride) -> conv3x3
            shapes = [(layout.in_channels, planes, 3, layout.stride), (planes, planes, 3, 1)]
        else:  # conv1x1 -> conv3x3(stride) -> conv1x1 expanding
            shapes = [(layout.in_channels, planes, 1, 1), (planes, planes, 3, layout.stride),
                      (planes, layout.out_channels, 1, 1)]
        self.depth = len(shapes)
        for k, (c_in, c_out, kernel, stride) in enumerate(shapes, start=1):
            layer, normalisation = conv_norm(c_in, c_out, kernel, stride, norm)
            self.add_module(f"conv{k}", layer)
            self.add_module(f"norm{k}", normalisation)
        self.shortcut = (
            ConvNorm(layout.in_channels, layout.out_channels, 1, norm, layout.stride) if layout.projection else None
        )

    def forward(self, x: Tensor) -> Tensor:
        h = x  # (N, in, H, W)
        for k in range(1, self.depth + 1):
            h = getattr(self, f"norm{k}")(getattr(self, f"conv{k}")(h))
            if k < self.depth:
                h = torch.relu(h)
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(h + skip)  # (N, out, H / stride, W / stride)


class ResNet(nn.Module):
    """State-dict keys ``stem.conv.weight``, ``stem.norm.*``, ``stages.{s}.{b}.<block keys>`` (see
    :class:`ResidualBlock`; s = stage, b = block within the stage) and ``head.weight|bias``."""

    def __init__(self, in_channels: int, width: int, depth: int, num_classes: int, norm: str | None = None) -> None:
        super().__init__()
        layout = block_layout(depth, width)
        self.stem = ConvNorm(in_channels, width, 3, norm)
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(b, norm) for b in layout if b.stage == s))
            for s in range(len(STAGES[depth][1]))
        )
        self.head = nn.Linear(layout[-1].out_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.stem(x))  # (N, width, H, W)
        for stage in self.stages:
            h = stage(h)
        return self.head(h.mean(dim=(2, 3)))  # (N, 2**(stages - 1) * width * expansion) -> (N, classes)


def build(arch: Architecture) -> nn.Module:
    return ResNet(arch.input_shape[0], arch.width, arch.depth, arch.num_classes, arch.norm)


def block(layout: BlockLayout, p_in: str | None, p_out: str | None, norm: str | None) -> dict[str, Axes]:
    """Spec entries of one residual block reading stream ``p_in`` and writing stream ``p_out``.

    The output of every branch conv but the last gets the block's own permutation, named after that conv
    (``stages.{s}.{b}.conv{k}``); the last conv, its norm and the projection write ``p_out``.
    """
    prefix = layout.prefix
    chain = [p_in, *(f"{prefix}.conv{k}" for k in range(1, CONVS[layout.kind])), p_out]
    entries: dict[str, Axes] = {}
    for k in range(1, CONVS[layout.kind] + 1):
        entries |= conv_norm_axes(f"{prefix}.conv{k}", f"{prefix}.norm{k}", chain[k - 1], chain[k], norm)
    if layout.projection:
        entries |= conv_norm_axes(f"{prefix}.shortcut.conv", f"{prefix}.shortcut.norm", p_in, p_out, norm)
    return entries


def permutation_spec(arch: Architecture, residual: str = "full") -> PermutationSpec:
    """Spec of :class:`ResNet` in residual mode ``"internal"`` or ``"full"`` (see the module docstring).

    In ``"full"`` mode stage ``s``'s stream is ``stream.{s}``; the stem writes ``stream.0`` when stage 0 starts
    without a projection (ResNet-18/34) and its own stream ``stem`` otherwise (ResNet-50, whose first block
    widens ``width`` to ``4 * width``). In ``"internal"`` mode every stream axis is ``None``.
    """
    if residual not in ("internal", "full"):
        raise ValueError(f"unknown residual mode {residual!r}; choose one of ('internal', 'full')")

    def stream(name: str) -> str | None:
        return name if residual == "full" else None

    layout, kind = block_layout(arch.depth, arch.width), arch.norm
    current = stream("stem" if layout[0].projection else "stream.0")
    axes = conv_norm_axes("stem.conv", "stem.norm", None, current, kind)
    for b in layout:
        out = stream(f"stream.{b.stage}") if b.projection else current
        axes |= block(b, current, out, kind)
        current = out
    axes |= dense("head", current, None)
    return PermutationSpec(axes)
