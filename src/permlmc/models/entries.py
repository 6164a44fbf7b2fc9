"""Spec entries of the common layers, for permutation specs written by hand (:mod:`permlmc.models`): which
permutation acts on which axis of a Linear, a convolution, a BatchNorm or LayerNorm, and a plain feed-forward stack
of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from permlmc.axes import Axes
from permlmc.permutation import RUNNING_STATISTICS


def dense(prefix: str, p_in: str | None, p_out: str | None, *, bias: bool = True) -> dict[str, Axes]:
    """Spec entries of a ``torch.nn.Linear`` whose weight is ``(out, in)``."""
    entries: dict[str, Axes] = {f"{prefix}.weight": (p_out, p_in)}
    if bias:
        entries[f"{prefix}.bias"] = (p_out,)
    return entries


def conv(prefix: str, p_in: str | None, p_out: str | None, *, bias: bool = True) -> dict[str, Axes]:
    """Spec entries of a ``torch.nn.Conv2d`` whose weight is ``(out, in, kh, kw)``."""
    entries: dict[str, Axes] = {f"{prefix}.weight": (p_out, p_in, None, None)}
    if bias:
        entries[f"{prefix}.bias"] = (p_out,)
    return entries


def norm(prefix: str, p: str | None) -> dict[str, Axes]:
    """Spec entries of a BatchNorm layer: affine parameters and running statistics move with the channels;
    ``num_batches_tracked`` is a scalar no permutation touches."""
    return {
        f"{prefix}.weight": (p,), f"{prefix}.bias": (p,), **{f"{prefix}.{s}": (p,) for s in RUNNING_STATISTICS},
        f"{prefix}.num_batches_tracked": (),
    }


def affine(prefix: str, p: str | None) -> dict[str, Axes]:
    """Spec entries of a normalisation layer without running statistics (LayerNorm over channels): its
    per-channel scale and shift move with the channels."""
    return {f"{prefix}.weight": (p,), f"{prefix}.bias": (p,)}


def chain(layer: Callable[..., dict[str, Axes]], prefixes: Sequence[str], head: str) -> dict[str, Axes]:
    """Spec entries of a plain feed-forward stack: layer ``prefixes[i]`` has its own permutation (named after
    it) on its outputs, which the next layer (finally ``head``) takes as inputs. ``layer`` is ``dense`` or
    ``conv``."""
    axes: dict[str, Axes] = {}
    previous: str | None = None
    for prefix in prefixes:
        axes |= layer(prefix, previous, prefix)
        previous = prefix
    return axes | layer(head, previous, None)
