"""The spec the tied axis classes describe, once the whole graph has been walked (:mod:`permlmc.tracing.derive`).

Every class that is free and has more than one unit becomes one permutation, named after the first state-dict
entry (in state-dict order) it acts on, so that the names come in the order a hand-written spec lists them;
an axis whose layout has several segments becomes pieces. Axes split into attention heads are settled first
(:meth:`~permlmc.tracing.classes.AxisClasses.settle_views`): each heads group becomes a
:class:`~permlmc.axes.Heads` of the permutations named after its classes. Entries given by hand keep their
axes, with names local to their module (``path/name``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from permlmc.axes import Axes, Axis, Heads, Piece
from permlmc.permutation import PermutationSpec
from permlmc.tracing.classes import Layout
from permlmc.tracing.context import Context

if TYPE_CHECKING:
    from permlmc.tracing.derive import TraceOptions


def assemble_spec(
    ctx: Context, state: dict[str, Tensor], options: TraceOptions
) -> tuple[PermutationSpec, dict[tuple[str, int], str]]:
    """The spec the classes describe: names in state-dict order, by-hand entries with names local to their module."""
    classes, names = ctx.classes, dict[int, str]()
    groups = classes.settle_views()
    axes: dict[str, Axes] = {}
    fixed: dict[tuple[str, int], str] = {}
    hand = {f"{path}.{key}": (path, entry) for path, entries in options.by_hand.items()
            for key, entry in entries.items()}
    for key, value in state.items():
        if key in hand:
            path, given = hand[key]
            axes[key] = tuple(_local(path, a) for a in given)
            continue
        out: list[Axis] = []
        for axis, layout in enumerate(ctx.params[key]):
            entry = _axis(ctx, classes.expand(layout), key, axis, names) if key in ctx.used else None
            if entry is None and value.shape[axis] > 1:
                fixed[(key, axis)] = _reason(ctx, layout) if key in ctx.used else "not used by the traced forward"
            elif isinstance(entry, tuple) and any(piece.name is None for piece in entry):
                fixed[(key, axis)] = f"in part: {_reason(ctx, layout)}"
            out.append(entry)
        axes[key] = tuple(out)
    heads = []
    for roots, block in groups:
        members = tuple(names[root] for root in roots if root in names)
        if members:
            heads.append(Heads(members, block))
    return PermutationSpec(axes, heads=tuple(heads)), fixed


def _axis(ctx: Context, layout: Layout, key: str, axis: int, names: dict[int, str]) -> Axis:
    pieces = []
    for element, block in layout:
        root, total = ctx.classes.find(element)
        units = ctx.classes.size[root]
        if ctx.classes.reasons.get(root) or units < 2:
            pieces.append(Piece(None, units * total * block))
            continue
        if root not in names:
            names[root] = _unique(key.rsplit(".", 1)[0] if "." in key else key, set(names.values()))
        pieces.append(Piece(names[root], units, total * block))
    if all(p.name is None for p in pieces):
        return None
    if len(pieces) == 1 and pieces[0].block == 1:
        return pieces[0].name
    return tuple(pieces)


def _unique(base: str, taken: set[str]) -> str:
    """``base``, or ``base:2``, ``base:3``, ... whichever is not taken yet."""
    name, count = base, 1
    while name in taken:
        count += 1
        name = f"{base}:{count}"
    return name


def _reason(ctx: Context, layout: Layout) -> str:
    for element, _ in ctx.classes.expand(layout):
        root, _ = ctx.classes.find(element)
        if ctx.classes.reasons.get(root):
            return ctx.classes.reasons[root][0]
    return "a single unit"


def _local(path: str, entry: Axis) -> Axis:
    if entry is None:
        return None
    if isinstance(entry, str):
        return f"{path}/{entry}"
    return tuple(Piece(None if p.name is None else f"{path}/{p.name}", p.units, p.block) for p in entry)
