"""Permutation specs: which permutation acts on which axis of which state-dict entry.

A network's hidden units can be reordered without changing its function (Entezari et al. 2022, §3.1: each
layer ``W_i`` becomes ``P_i W_i P_{i-1}^T``). A :class:`PermutationSpec` records this symmetry as *data*: for
every state-dict key, the name of the permutation acting on each of its axes (``None`` for none). Everything
else (apply, invert, compose, random draws, matching) is generic over that table.

Convention: applying ``perm`` to parameters ``B`` gives ``B'`` whose unit ``j`` is unit ``perm[j]`` of ``B``,
i.e. ``B' = index_select(B, axis, perm)`` on every axis the permutation acts on.

What acts on one axis (a name, none, or pieces: flattened feature maps, concatenations) and attention heads' groups
are in :mod:`permlmc.axes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from permlmc.axes import Axes, Axis, Heads, Piece, SpecError, Stretch, axis_names, check_heads, within_heads
from permlmc.types import Permutation, StateDict


@dataclass(frozen=True)
class PermutationSpec:
    """``axes[key][i]`` names the permutation acting on axis ``i`` of state-dict entry ``key``.

    Keys absent from ``axes`` are not allowed in a validated state dict; buffers that no permutation touches
    (e.g. BatchNorm's ``num_batches_tracked``) are listed with an empty tuple or all-``None`` axes.
    """

    axes: Mapping[str, Axes]
    heads: tuple[Heads, ...] = ()
    """Groups of permutations restricted to moving whole attention heads (:mod:`permlmc.axes`)."""
    perm_to_axes: Mapping[str, tuple[tuple[str, int], ...]] = field(init=False)
    """Derived: each permutation name -> the (key, axis) pairs it acts on, whole or in pieces."""
    stretches: Mapping[str, tuple[Stretch, ...]] = field(init=False)
    """Derived: each permutation name -> every stretch of units it reorders (one per axis or piece)."""

    def __post_init__(self) -> None:
        reverse: dict[str, list[tuple[str, int]]] = {}
        places: dict[str, list[Stretch]] = {}
        for key, names in self.axes.items():
            for axis, entry in enumerate(names):
                for name in axis_names(entry):
                    reverse.setdefault(name, []).append((key, axis))
                if isinstance(entry, str):
                    places.setdefault(entry, []).append(Stretch(key, axis))
                elif entry is not None:
                    start = 0
                    for piece in entry:
                        if piece.name is not None:
                            places.setdefault(piece.name, []).append(Stretch(key, axis, start, piece.block))
                        start += piece.length
        object.__setattr__(self, "perm_to_axes", {name: tuple(v) for name, v in reverse.items()})
        object.__setattr__(self, "stretches", {name: tuple(places[name]) for name in reverse})
        grouped = [name for group in self.heads for name in group.members]
        strays = sorted(set(grouped) - set(reverse))
        if strays or len(grouped) != len(set(grouped)):
            raise SpecError(f"heads groups must list permutations of the spec, each once; got {self.heads} "
                            f"(not in the spec: {strays})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.perm_to_axes)

    @property
    def structured(self) -> bool:
        """Whether some axis is acted on in pieces rather than whole (a search that cannot handle it says so)."""
        return any(isinstance(entry, tuple) for names in self.axes.values() for entry in names)

    def group_of(self, name: str) -> Heads | None:
        """The heads group ``name`` belongs to (None: it is a plain permutation)."""
        return next((group for group in self.heads if name in group.members), None)

    def moved_with(self, name: str) -> tuple[str, ...]:
        """The permutations a search sets together with ``name``: its heads group's members, or ``name`` alone."""
        group = self.group_of(name)
        return (name,) if group is None else group.members

    def require_whole_axes(self, what: str) -> None:
        """Raise :class:`SpecError` naming ``what`` and the first axis acted on in pieces: for code that handles
        only permutations acting on whole axes."""
        for key, names in self.axes.items():
            for axis, entry in enumerate(names):
                if isinstance(entry, tuple):
                    raise SpecError(
                        f"{what} handles only permutations acting on whole axes; axis {axis} of {key!r} is acted on "
                        f"in pieces ({', '.join(f'{p.name}: {p.units}x{p.block}' for p in entry)}: a flatten into a "
                        "Linear or a concatenation). Use weight_matching, activation_matching, sa or ste instead")

    def sizes(self, params: StateDict) -> dict[str, int]:
        """Number of units each permutation acts on, read off ``params``."""
        return {name: _units(self.axes[s.key][s.axis], params[s.key].shape[s.axis], name)
                for name, (s, *_) in self.stretches.items()}

    def validate(self, params: StateDict) -> None:
        """Check that the spec covers ``params`` exactly and that tied axes agree in size."""
        missing = sorted(set(params) - set(self.axes))
        extra = sorted(set(self.axes) - set(params))
        if missing or extra:
            raise SpecError(f"spec and state dict differ: keys not in spec {missing}, spec keys not in state {extra}")
        for key, names in self.axes.items():
            if names and len(names) != params[key].ndim:
                raise SpecError(f"{key}: spec gives {len(names)} axes, tensor has shape {tuple(params[key].shape)}")
            for axis, entry in enumerate(names):
                if isinstance(entry, tuple) and sum(p.length for p in entry) != params[key].shape[axis]:
                    raise SpecError(f"{key}: the pieces of axis {axis} span {sum(p.length for p in entry)} entries, "
                                    f"the axis has {params[key].shape[axis]}")
        for name, places in self.stretches.items():
            sizes = {(s.key, s.axis, s.start): _units(self.axes[s.key][s.axis], params[s.key].shape[s.axis], name)
                     for s in places}
            if len(set(sizes.values())) != 1:
                raise SpecError(f"permutation {name!r} acts on axes of different sizes: {sizes}")
        units = self.sizes(params)
        for group in self.heads:
            found = {name: units[name] for name in group.members}
            if len(set(found.values())) != 1 or next(iter(found.values())) % group.head_size:
                raise SpecError(f"the heads group {group.members} needs members of one size, a multiple of its "
                                f"head size {group.head_size}; their sizes are {found}")

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
        for group in self.heads:
            check_heads(group, perm)


def _units(entry: Axis, length: int, name: str) -> int:
    """Units of permutation ``name`` on an axis of ``length`` entries acted on by ``entry``."""
    if isinstance(entry, tuple):
        return next(piece.units for piece in entry if piece.name == name)
    return length


def axis_index(entry: Axis, length: int, perm: Permutation) -> Tensor | None:
    """The index that permutes an axis of ``length`` entries acted on by ``entry`` (None: nothing moves):
    ``index_select(tensor, axis, index)`` applies ``perm`` to it."""
    if entry is None:
        return None
    if isinstance(entry, str):
        return perm[entry]
    parts, start = [], 0
    for piece in entry:
        units = torch.arange(piece.units) if piece.name is None else perm[piece.name].cpu()
        within = torch.arange(piece.block)
        parts.append(start + (units[:, None] * piece.block + within).flatten())  # (units * block,)
        start += piece.length
    if start != length:
        raise SpecError(f"pieces span {start} entries, the axis has {length}")
    return torch.cat(parts)


def permute_tensor(value: Tensor, axes: Axes, perm: Permutation, skip: int | None = None) -> Tensor:
    """``value`` with ``perm`` applied on every axis of ``axes`` but ``skip``; ``value`` itself is not changed."""
    for axis, entry in enumerate(axes):
        if axis != skip:
            index = axis_index(entry, value.shape[axis], perm)
            if index is not None:
                value = torch.index_select(value, axis, index.to(value.device))
    return value


def unit_rows(value: Tensor, stretch: Stretch, units: int) -> Tensor:
    """The entries of ``value`` in ``stretch``, one row per unit: ``(units, rest)``, rest = block x the other axes."""
    moved = torch.movedim(value, stretch.axis, 0)[stretch.start : stretch.start + units * stretch.block]
    return moved.reshape(units, -1)


def apply_permutation(spec: PermutationSpec, perm: Permutation, params: StateDict) -> StateDict:
    """Return permuted parameters; ``params`` is left untouched (the result shares unpermuted tensors)."""
    return {key: permute_tensor(value, spec.axes.get(key, ()), perm) for key, value in params.items()}


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
    """A uniformly random permutation for every name, drawn in the spec's (deterministic) name order; a heads
    group is drawn at its first member: one head order, then each member's reordering within every head."""
    out: Permutation = {}
    for name, n in spec.sizes(params).items():
        group = spec.group_of(name)
        if group is None:
            out[name] = torch.randperm(n, generator=generator)
        elif name not in out:
            order = torch.randperm(n // group.head_size, generator=generator)
            for member in group.members:
                within = torch.stack([torch.randperm(group.head_size, generator=generator) for _ in order])
                out[member] = within_heads(order, within)
    return out


def leave_in_place(spec: PermutationSpec, names: Sequence[str]) -> PermutationSpec:
    """``spec`` with the permutations ``names`` acting nowhere (their axes left in place), e.g. a transformer's
    residual stream; an unknown name, or part of a heads group, is a :class:`SpecError`."""
    unknown = sorted(set(names) - set(spec.names))
    if unknown:
        raise SpecError(f"cannot leave {unknown} in place: not permutations of the spec ({list(spec.names)})")

    def kept(entry: Axis) -> Axis:
        if isinstance(entry, tuple):
            pieces = tuple(Piece(None if p.name in names else p.name, p.units, p.block) for p in entry)
            return None if all(p.name is None for p in pieces) else pieces
        return None if entry in names else entry

    for group in spec.heads:
        left = [m for m in group.members if m in names]
        if left and len(left) != len(group.members):
            raise SpecError(f"cannot leave {left} in place without the rest of their heads group {group.members}: "
                            "the others would still move whole heads, which the ones left in place do not follow")
    groups = tuple(g for g in spec.heads if g.members[0] not in names)
    return PermutationSpec({key: tuple(kept(e) for e in axes) for key, axes in spec.axes.items()}, heads=groups)


def permutation_layout(spec: PermutationSpec) -> dict[str, list[list[str | int]]]:
    """For a sidecar: each permutation name -> where it acts, so any tool can apply it: ``[key, axis]`` for a whole
    axis, ``[key, axis, start, block]`` for a stretch of one (unit ``u`` is entries ``start + u * block`` to
    ``start + (u + 1) * block - 1``)."""
    return {
        name: [[s.key, s.axis] if (s.start, s.block) == (0, 1) and isinstance(spec.axes[s.key][s.axis], str)
               else [s.key, s.axis, s.start, s.block] for s in places]
        for name, places in spec.stretches.items()
    }


RUNNING_STATISTICS = ("running_mean", "running_var")
"""A BatchNorm layer's per-channel statistics of the data (state-dict entries, not learned weights)."""
