"""Permutation specs: which permutation acts on which axis of which state-dict entry.

A network's hidden units can be reordered without changing its function (Entezari et al. 2022, §3.1: each
layer ``W_i`` becomes ``P_i W_i P_{i-1}^T``). A :class:`PermutationSpec` records this symmetry as *data*: for
every state-dict key, the name of the permutation acting on each of its axes (``None`` for none). Everything
else (apply, invert, compose, random draws, matching) is generic over that table.

Convention: applying ``perm`` to parameters ``B`` gives ``B'`` whose unit ``j`` is unit ``perm[j]`` of ``B``,
i.e. ``B' = index_select(B, axis, perm)`` on every axis the permutation acts on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from permlmc.types import Permutation, StateDict

Axes = tuple[str | None, ...]


class SpecError(ValueError):
    """A spec does not fit a state dict or a permutation does not fit a spec."""


@dataclass(frozen=True)
class PermutationSpec:
    """``axes[key][i]`` names the permutation acting on axis ``i`` of state-dict entry ``key``.

    Keys absent from ``axes`` are not allowed in a validated state dict; buffers that no permutation touches
    (e.g. BatchNorm's ``num_batches_tracked``) are listed with an empty tuple or all-``None`` axes.
    """

    axes: Mapping[str, Axes]
    perm_to_axes: Mapping[str, tuple[tuple[str, int], ...]] = field(init=False)

    def __post_init__(self) -> None:
        reverse: dict[str, list[tuple[str, int]]] = {}
        for key, names in self.axes.items():
            for axis, name in enumerate(names):
                if name is not None:
                    reverse.setdefault(name, []).append((key, axis))
        object.__setattr__(self, "perm_to_axes", {name: tuple(v) for name, v in reverse.items()})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.perm_to_axes)

    def sizes(self, params: StateDict) -> dict[str, int]:
        """Number of units each permutation acts on, read off ``params``."""
        return {name: params[key].shape[axis] for name, ((key, axis), *_) in self.perm_to_axes.items()}

    def validate(self, params: StateDict) -> None:
        """Check that the spec covers ``params`` exactly and that tied axes agree in size."""
        missing = sorted(set(params) - set(self.axes))
        extra = sorted(set(self.axes) - set(params))
        if missing or extra:
            raise SpecError(f"spec and state dict differ: keys not in spec {missing}, spec keys not in state {extra}")
        for key, names in self.axes.items():
            if names and len(names) != params[key].ndim:
                raise SpecError(f"{key}: spec gives {len(names)} axes, tensor has shape {tuple(params[key].shape)}")
        for name, places in self.perm_to_axes.items():
            sizes = {(key, axis): params[key].shape[axis] for key, axis in places}
            if len(set(sizes.values())) != 1:
                raise SpecError(f"permutation {name!r} acts on axes of different sizes: {sizes}")

    def check_permutation(self, perm: Permutation, params: StateDict) -> None:
        """Raise :class:`SpecError` unless ``perm`` holds a valid permutation of the right size for each name."""
        if set(perm) != set(self.perm_to_axes):
            raise SpecError(f"permutation names {sorted(perm)} differ from the spec's {sorted(self.perm_to_axes)}")
        for name, size in self.sizes(params).items():
            p = perm[name]
            if p.shape != (size,) or not torch.equal(torch.sort(p).values, torch.arange(size, device=p.device)):
                raise SpecError(
                    f"permutation {name!r} must be a permutation of range({size}); got shape {tuple(p.shape)}"
                )


def apply_permutation(spec: PermutationSpec, perm: Permutation, params: StateDict) -> StateDict:
    """Return permuted parameters; ``params`` is left untouched (the result shares unpermuted tensors)."""
    out: StateDict = {}
    for key, value in params.items():
        for axis, name in enumerate(spec.axes.get(key, ())):
            if name is not None:
                value = torch.index_select(value, axis, perm[name].to(value.device))
        out[key] = value
    return out


def invert(perm: Permutation) -> Permutation:
    """The permutation that undoes ``perm``: ``apply(invert(p), apply(p, x)) == x``."""
    return {name: torch.argsort(p) for name, p in perm.items()}


def compose(first: Permutation, second: Permutation) -> Permutation:
    """One permutation equal to applying ``first`` and then ``second``."""
    return {name: first[name][second[name]] for name in first}


def planted_alignment(perm_a: Permutation, perm_b: Permutation) -> Permutation:
    """For copies ``A = apply(perm_a, R)`` and ``B = apply(perm_b, R)`` of one network ``R``: the permutation
    ``q`` with ``apply(q, B) == A``, i.e. ``q = perm_b^-1 o perm_a`` (``B[q[j]] = R[perm_b[q[j]]] = R[perm_a[j]]``)."""
    return compose(invert(perm_b), perm_a)


def agreement(found: Permutation, truth: Permutation) -> dict[str, float]:
    """Fraction of units ``found`` sends where ``truth`` does: per permutation name, and pooled over all
    units under ``"all"``."""
    same = {name: (found[name].cpu() == truth[name].cpu()) for name in truth}
    pooled = torch.cat([hit.flatten() for hit in same.values()])
    return {"all": float(pooled.float().mean()), **{name: float(hit.float().mean()) for name, hit in same.items()}}


def identity(spec: PermutationSpec, params: StateDict) -> Permutation:
    return {name: torch.arange(n) for name, n in spec.sizes(params).items()}


def random_permutation(spec: PermutationSpec, params: StateDict, generator: torch.Generator) -> Permutation:
    """A uniformly random permutation for every name, drawn in the spec's (deterministic) name order."""
    return {name: torch.randperm(n, generator=generator) for name, n in spec.sizes(params).items()}


def permutation_layout(spec: PermutationSpec) -> dict[str, list[list[str | int]]]:
    """For a sidecar: each permutation name -> its [state-dict key, axis] pairs, so any tool can apply it."""
    return {name: [[key, axis] for key, axis in places] for name, places in spec.perm_to_axes.items()}


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


RUNNING_STATISTICS = ("running_mean", "running_var")
"""A BatchNorm layer's per-channel statistics of the data (state-dict entries, not learned weights)."""


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
