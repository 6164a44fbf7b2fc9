"""The normalisation after each convolution of VGG and ResNet: BatchNorm, LayerNorm over channels, or none.

* ``bn``: ``torch.nn.BatchNorm2d`` (the paper's and REPAIR's networks); keys ``weight``, ``bias``,
  ``running_mean``, ``running_var``, ``num_batches_tracked``.
* ``ln``: LayerNorm over the channels at every position, ``y[n, c, h, w] = g[c] (x[n, c, h, w] - m[n, h, w]) /
  sqrt(v[n, h, w] + eps) + b[c]`` with ``m``, ``v`` the mean and variance over ``c`` (as Git Re-Basin's ResNets
  use it: flax's ``LayerNorm`` on NHWC features); keys ``weight``, ``bias``. No batch statistics, so a network
  computes the same function in train and eval mode, and nothing needs re-estimating along a path.
* ``none``: no layer; the convolution then has its own bias.

Each is equivariant under a permutation of the channels (``m`` and ``v`` are symmetric in ``c``), so the
normalisation's entries take the permutation of the convolution they follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from permlmc.axes import Axes
from permlmc.models.entries import affine, conv, norm


class ChannelLayerNorm(nn.Module):
    """LayerNorm over dim 1 of ``(N, C, ...)`` inputs, with a per-channel scale ``weight`` and shift ``bias``."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        h = F.layer_norm(x.movedim(1, -1), (x.shape[1],), self.weight, self.bias, self.eps)  # (N, ..., C)
        # contiguous: the next convolution then sees (N, C, ...) memory, not a channels-last view; with one thread
        # on CPUs without AVX-512, oneDNN's convolution backward corrupted the heap on such mixed layouts (torch
        # 2.14, ResNet-18 with this norm: "corrupted double-linked list")
        return h.movedim(-1, 1).contiguous()  # (N, C, ...)


def _no_layer(_channels: int) -> nn.Module:
    return nn.Identity()


def _no_axes(_prefix: str, _p: str | None) -> dict[str, Axes]:
    return {}


@dataclass(frozen=True)
class Norm:
    """One normalisation: its layer over ``channels``, its spec entries, and whether the convolution before it
    keeps a bias (only without a layer: a BatchNorm or LayerNorm shift absorbs it)."""

    layer: Callable[[int], nn.Module]
    axes: Callable[[str, str | None], dict[str, Axes]]
    conv_bias: bool


NORMS: dict[str, Norm] = {
    "bn": Norm(layer=nn.BatchNorm2d, axes=norm, conv_bias=False),
    "ln": Norm(layer=ChannelLayerNorm, axes=affine, conv_bias=False),
    "none": Norm(layer=_no_layer, axes=_no_axes, conv_bias=True),
}
"""Normalisations of a family with a ``norm`` option; the first is its default (a model name without suffix)."""


def get_norm(kind: str | None) -> Norm:
    """The normalisation ``kind`` (None: the default, the first of :data:`NORMS`)."""
    kind = next(iter(NORMS)) if kind is None else kind
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; choose one of {tuple(NORMS)}")
    return NORMS[kind]


def conv_norm(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, kind: str | None
) -> tuple[nn.Conv2d, nn.Module]:
    """A convolution ("same" padding, biased only without a norm) and the normalisation ``kind`` of its outputs."""
    chosen = get_norm(kind)
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                      bias=chosen.conv_bias)
    return layer, chosen.layer(out_channels)


def conv_norm_axes(
    conv_prefix: str, norm_prefix: str, p_in: str | None, p_out: str | None, kind: str | None
) -> dict[str, Axes]:
    """Spec entries of :func:`conv_norm`'s pair: the norm moves with the convolution's output channels."""
    chosen = get_norm(kind)
    return conv(conv_prefix, p_in, p_out, bias=chosen.conv_bias) | chosen.axes(norm_prefix, p_out)
