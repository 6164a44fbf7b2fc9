"""What acts on one axis of a state-dict entry in a :class:`permlmc.permutation.PermutationSpec`: a permutation's name,
None (nothing), or pieces; where a permutation's units sit in a tensor (:class:`Stretch`); attention heads
(:class:`Heads`) and their checks; and :class:`SpecError`, what a spec that does not fit raises.

Most axes are acted on whole by one permutation (or by none). Two shapes of a network need more, and an axis
then lists its :class:`Piece` s, consecutive stretches from the start of the axis, each reordered by one
permutation (or left in place) in units of ``block`` consecutive entries:

* a feature map ``(C, H, W)`` flattened into a Linear: the Linear's input axis holds ``C`` units of ``H * W``
  entries each, ``(Piece(p, C, H * W),)``;
* a concatenation of channels ``[x, y]``: each part keeps its permutation, ``(Piece(p, Cx), Piece(q, Cy))``.

Multi-head attention has a symmetry that a permutation of whole axes does not express: the heads may be reordered as
whole blocks, and within each head the query and key dimensions may be reordered (one way for both), the value and
output dimensions another. Such permutations are listed in a :class:`Heads` group: each is an ordinary permutation
of ``heads * head_size`` units acting on whole axes (or pieces), and the group restricts its values to those that move
whole heads, the same head to the same place in every member (:func:`check_heads`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from permlmc.types import Permutation


@dataclass(frozen=True)
class Piece:
    """A stretch of an axis: ``units`` units of ``block`` consecutive entries each, reordered by permutation
    ``name`` (None: left in place). Unit ``u`` of the stretch is entries ``[u * block, (u + 1) * block)``."""

    name: str | None
    units: int
    block: int = 1

    @property
    def length(self) -> int:
        return self.units * self.block


Axis = str | None | tuple[Piece, ...]
"""What acts on one axis: a permutation's name, None (nothing), or pieces (module doc)."""
Axes = tuple[Axis, ...]


def whole(axis: Axis) -> str | None:
    """The one permutation acting on ``axis`` whole (None: none); a :class:`SpecError` for an axis in pieces (code
    that handles only whole axes checks
    :meth:`permlmc.permutation.PermutationSpec.require_whole_axes` first)."""
    if isinstance(axis, tuple):
        raise SpecError(f"an axis acted on in pieces ({axis}) where a whole axis is expected")
    return axis


def axis_names(axis: Axis) -> tuple[str, ...]:
    """The permutations acting on ``axis``, each once."""
    if axis is None:
        return ()
    if isinstance(axis, str):
        return (axis,)
    return tuple(dict.fromkeys(piece.name for piece in axis if piece.name is not None))


@dataclass(frozen=True)
class Stretch:
    """Where permutation units sit in one tensor: along ``axis`` of entry ``key``, from entry ``start`` on, each
    unit ``block`` consecutive entries (``start = 0, block = 1`` for an axis acted on whole)."""

    key: str
    axis: int
    start: int = 0
    block: int = 1


class SpecError(ValueError):
    """A spec does not fit a state dict or a permutation does not fit a spec."""


@dataclass(frozen=True)
class Heads:
    """Permutations ``members`` each act on ``heads x head_size`` units, ``head_size`` consecutive units per attention
    head. A valid value sends unit ``h * head_size + i`` to ``head[h] * head_size + within[h][i]``: every member moves
    head ``h`` to the same place ``head[h]``, and reorders the units within each head its own way (``within`` per
    member)."""

    members: tuple[str, ...]
    head_size: int

    def __post_init__(self) -> None:
        if not self.members or self.head_size < 1:
            raise SpecError(f"a heads group needs members and a positive head size, got {self}")


def head_order(p: Tensor, head_size: int) -> Tensor:
    """Where a permutation that moves whole heads of ``head_size`` units sends each head: ``(heads,)``."""
    return p.reshape(-1, head_size)[:, 0] // head_size


def check_heads(group: Heads, perm: Permutation) -> None:
    """Raise :class:`SpecError` unless every member of ``group`` moves whole heads, all members alike."""
    first = head_order(perm[group.members[0]].cpu(), group.head_size)
    for name in group.members:
        rows = perm[name].cpu().reshape(-1, group.head_size) // group.head_size  # (heads, head_size): each unit's head
        if not torch.equal(rows, first[:, None].expand_as(rows)):
            raise SpecError(f"permutation {name!r} must move whole heads of {group.head_size} units, in the same order "
                            f"as {group.members[0]!r} (heads group {group.members})")


def within_heads(order: Tensor, within: Tensor) -> Tensor:
    """The permutation that puts head ``order[h]`` at head ``h``, its units reordered by ``within[h]``:
    ``(heads * head_size,)`` from ``order (heads,)`` and ``within (heads, head_size)``."""
    head_size = within.shape[1]
    return (order[:, None] * head_size + within).flatten()
