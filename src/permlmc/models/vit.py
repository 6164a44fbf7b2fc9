"""Vision Transformers (Dosovitskiy et al. 2021), small: patch embedding, class token, learnt position embedding,
``depth`` pre-norm encoder blocks of ``width`` channels, final LayerNorm, linear head on the class token.

An image of side ``s`` is cut into :data:`PATCHES_PER_SIDE` x :data:`PATCHES_PER_SIDE` patches of side
``s / PATCHES_PER_SIDE`` (a 28-pixel image: 16 patches of 7 x 7), embedded by a strided convolution. A block is
``x + Attention(LN(x))`` then ``x + MLP(LN(x))``: multi-head self-attention with :data:`HEADS` heads of
``width / HEADS`` dimensions (query, key, value and output projections, ``scaled_dot_product_attention``), and an
MLP of ``MLP_RATIO * width`` GELU units. The registered family keeps these constants; other heads, patches or MLP
ratios are :func:`vision_transformer` as a network of the user's own (``models:`` in a workflow config).
Initialisation as torchvision's ViT: PyTorch's default for the layers, a zero class token, position embeddings of
standard deviation 0.02.

Permutation spec (:func:`permutation_spec`): in each block the query and key projections share one permutation of
every head's dimensions and the value and output projections another; both move whole heads alike (a
:class:`~permlmc.axes.Heads` group), each MLP has its own hidden permutation; and in residual mode ``"full"``
the residual stream (patch embedding, class token, position embedding, every LayerNorm, every block's input and
output projections, the head's input) is one permutation shared by all blocks. Mode ``"internal"`` leaves the
residual stream in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from permlmc.axes import Axes, Heads
from permlmc.models.entries import affine, conv, dense
from permlmc.permutation import PermutationSpec

if TYPE_CHECKING:
    from permlmc.models import Architecture

HEADS = 4
"""Attention heads of every block; the width must be a multiple of it."""
PATCHES_PER_SIDE = 4
"""Patches along each side of the image; its side must be a multiple of it."""
MLP_RATIO = 2
"""Hidden units of a block's MLP per channel of the residual stream."""
RESIDUAL = "residual"
"""The name of the residual stream's permutation in mode ``"full"``."""


class Attention(nn.Module):
    """Multi-head self-attention over ``(N, T, width)`` tokens, heads split off the last axis."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (layer(x).unflatten(-1, (self.heads, -1)).transpose(1, 2) for layer in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v)  # (N, heads, T, width / heads)
        return self.out(y.transpose(1, 2).flatten(2))


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2, self.mlp = nn.LayerNorm(width), MLP(width, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """State-dict keys ``patch``, ``cls``, ``pos``, ``blocks.{i}.{norm1,attn.{q,k,v,out},norm2,mlp.{fc1,fc2}}``,
    ``norm``, ``head``."""

    def __init__(
        self, input_shape: tuple[int, int, int], width: int, depth: int, num_classes: int, *, heads: int = HEADS,
        patches_per_side: int = PATCHES_PER_SIDE, mlp_ratio: int = MLP_RATIO,
    ) -> None:
        super().__init__()
        channels, side, other = input_shape
        if side != other or side % patches_per_side:
            raise ValueError(f"vit needs square images whose side is a multiple of {patches_per_side} (patches per "
                             f"side), got {side} x {other}")
        if width % heads:
            raise ValueError(f"vit's width must be a multiple of its {heads} heads, got {width}")
        patch = side // patches_per_side
        self.patch = nn.Conv2d(channels, width, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, patches_per_side**2 + 1, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio * width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)  # (N, patches, width)
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)[:, 0])  # (N, classes)


def build(arch: Architecture) -> nn.Module:
    return ViT(arch.input_shape, arch.width, arch.depth, arch.num_classes)


def vision_transformer(
    width: int, depth: int, num_classes: int, input_shape: tuple[int, int, int], *, heads: int = HEADS,
    patches_per_side: int = PATCHES_PER_SIDE, mlp_ratio: int = MLP_RATIO,
) -> ViT:
    """The ViT with other heads, patches or MLP ratio, as a network of the user's own: ``factory:
    permlmc.models.vit:vision_transformer`` with ``kwargs: {heads: 8, patches_per_side: 7, mlp_ratio: 4}`` (its spec is
    then derived from the graph and verified, heads groups included)."""
    channels, side, other = input_shape  # a list when read from a config
    return ViT((channels, side, other), width, depth, num_classes, heads=heads, patches_per_side=patches_per_side,
               mlp_ratio=mlp_ratio)


def permutation_spec(arch: Architecture, residual: str = "full") -> PermutationSpec:
    """The module doc's spec: per block a heads group (query/key, value/output) and an MLP permutation; the
    residual stream shared by all blocks in mode ``"full"``, left in place in ``"internal"``."""
    r = RESIDUAL if residual == "full" else None
    axes: dict[str, Axes] = {**conv("patch", None, r), "cls": (None, None, r), "pos": (None, None, r)}
    groups = []
    for i in range(arch.depth):
        block, qk, vo, hidden = f"blocks.{i}", f"blocks.{i}.qk", f"blocks.{i}.vo", f"blocks.{i}.mlp"
        axes |= {**affine(f"{block}.norm1", r), **dense(f"{block}.attn.q", r, qk), **dense(f"{block}.attn.k", r, qk),
                 **dense(f"{block}.attn.v", r, vo), **dense(f"{block}.attn.out", vo, r),
                 **affine(f"{block}.norm2", r), **dense(f"{block}.mlp.fc1", r, hidden),
                 **dense(f"{block}.mlp.fc2", hidden, r)}
        groups.append(Heads((qk, vo), arch.width // HEADS))
    axes |= {**affine("norm", r), **dense("head", r, None)}
    return PermutationSpec(axes, heads=tuple(groups))
