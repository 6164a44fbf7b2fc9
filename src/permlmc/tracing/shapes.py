"""Op rules that move, merge, split, select or reduce axes (see :mod:`permlmc.tracing.rules`).

* Entrywise ops keep every axis; with broadcasting, an input axis of the output's size is the output's axis and
  a broadcast one (size 1) is tied to nothing.
* Reordering axes (``permute``, ``transpose``, ``movedim``) moves layouts with them.
* Merging axes (``flatten``, ``view``, ``reshape``): the first axis of size > 1 in a merged group keeps its
  permutation, acting on blocks of the product of the later ones, which stay (a flatten of ``(C, H, W)`` into a
  Linear permutes ``C`` blocks of ``H * W`` inputs). Splitting an axis is the same relation read backwards, except
  that an axis split in two (a Linear's outputs into attention heads and the units within a head) becomes a view
  of heads and within-head units, merged back likewise (:class:`~permlmc.tracing.classes.View`).
* Concatenation: each part keeps its own layout as a piece of the joined axis; stacking adds an axis that stays.
  Cutting an axis into parts (``split``, ``chunk``) is concatenation read backwards where the parts are whole
  segments of the axis, or the axis is one class not yet split (a fused query-key-value projection).
* Reductions (``mean``, ``sum``, ``amax``, ...) are symmetric in the reduced axes, which then vanish.
* Selecting positions (``x[:, 0]``, a partial slice, ``unbind``) fixes the axis it selects from.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.fx import Node

from permlmc.tracing.classes import Layout
from permlmc.tracing.context import Context, TraceError, Value, axes_of, op_name


def same(ctx: Context, node: Node) -> Value:
    """Entrywise on one tensor (activations, dropout, casts, softmax along an axis)."""
    return ctx.layouts(node.args[0])


def broadcast(ctx: Context, node: Node) -> Value:
    """Entrywise on several tensors and numbers, with broadcasting (add, mul, where, ...)."""
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None  # arithmetic on sizes
    shape = ctx.shape(node)
    out: list[Layout | None] = [None] * len(shape)
    for arg in (*node.args, *node.kwargs.values()):
        value = ctx.value(arg)
        if isinstance(arg, Node) and not isinstance(value, list) and arg.meta.get("tensor_meta") is not None:
            raise TraceError(f"{ctx.where}: argument {arg.name!r} is a tensor whose axes the tracer did not follow")
        if not isinstance(value, list):
            continue
        offset = len(shape) - len(value)
        for axis, layout in enumerate(value):
            if ctx.classes.length(layout) != shape[offset + axis]:
                continue  # broadcast along this axis: constant, tied to nothing
            current = out[offset + axis]
            if current is None:
                out[offset + axis] = layout
            else:
                ctx.tie(current, layout)
    return [layout if layout is not None else ctx.new(size) for layout, size in zip(out, shape, strict=True)]


def _axis(dim: int, ndim: int) -> int:
    return dim % ndim if ndim else 0


def merge(ctx: Context, layouts: list[Layout], why: str) -> Layout:
    """One layout for the axes ``layouts`` merged in row-major order (module doc)."""
    sizes = [ctx.classes.length(layout) for layout in layouts]
    lead = next((i for i, s in enumerate(sizes) if s > 1), None)
    if lead is None:
        return ctx.new(1)
    later = [i for i in range(lead + 1, len(sizes)) if sizes[i] > 1]
    if len(later) == 1 and ctx.classes.within_head(layouts[later[0]]):  # attention heads merged back
        return ctx.classes.joined(layouts[lead], layouts[later[0]], ctx.where)
    inner = math.prod(sizes[lead + 1:])
    ctx.fix_all([layout for layout, s in zip(layouts[lead + 1:], sizes[lead + 1:], strict=True) if s > 1], why)
    return tuple((element, block * inner) for element, block in layouts[lead])


def split(ctx: Context, combined: Layout, sizes: list[int], why: str) -> list[Layout]:
    """Layouts of axes of ``sizes`` whose row-major merge is ``combined`` (module doc)."""
    lead = next((i for i, s in enumerate(sizes) if s > 1), None)
    if lead is None:
        return [ctx.new(s) for s in sizes]
    inner = math.prod(sizes[lead + 1:])
    later = [i for i in range(lead + 1, len(sizes)) if sizes[i] > 1]
    if all(block % inner == 0 for _, block in combined):
        head: Layout = tuple((element, block // inner) for element, block in combined)
    elif len(later) == 1 and (views := ctx.classes.view(combined, sizes[lead], inner)) is not None:
        heads, within = views  # attention heads: heads x units within a head (module doc of classes)
        return [*(ctx.new(s) for s in sizes[:lead]), heads,
                *(within if i in later else ctx.new(sizes[i]) for i in range(lead + 1, len(sizes)))]
    else:
        head = ctx.new(sizes[lead])
        ctx.tie(combined, tuple((element, block * inner) for element, block in head))
    rest = [ctx.new(s) for s in sizes[lead + 1:]]
    ctx.fix_all([layout for layout, s in zip(rest, sizes[lead + 1:], strict=True) if s > 1], why)
    return [*(ctx.new(s) for s in sizes[:lead]), head, *rest]


def flatten(ctx: Context, node: Node) -> Value:
    x = ctx.layouts(node.args[0])
    if node.op == "call_module":
        start, end = ctx.setting("start_dim"), ctx.setting("end_dim")
    else:
        start, end = ctx.arg(node, 1, "start_dim", 0), ctx.arg(node, 2, "end_dim", -1)
    start, end = _axis(start, len(x)), _axis(end, len(x))
    return [*x[:start], merge(ctx, x[start:end + 1], "merged into a later axis by flatten"), *x[end + 1:]]


def _groups(before: tuple[int, ...], after: tuple[int, ...]) -> list[tuple[list[int], list[int]]]:
    """Consecutive groups of axes of ``before`` and ``after`` with equal products (a reshape's correspondence)."""
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(before) or j < len(after):
        left, right = [i] if i < len(before) else [], [j] if j < len(after) else []
        a = before[i] if left else 1
        b = after[j] if right else 1
        i, j = i + len(left), j + len(right)
        while a != b:
            if a < b and i < len(before):
                a, i = a * before[i], i + 1
                left.append(i - 1)
            elif j < len(after):
                b, j = b * after[j], j + 1
                right.append(j - 1)
            else:
                raise TraceError(f"cannot match the axes of a reshape from {before} to {after}")
        groups.append((left, right))
    return groups


def reshape(ctx: Context, node: Node) -> Value:
    source = node.args[0]
    x = ctx.layouts(source)
    before, after = ctx.shape(source), ctx.shape(node)
    out: list[Layout] = []
    for left, right in _groups(before, after):
        combined = merge(ctx, [x[i] for i in left], "merged into a later axis by a reshape") if left else ctx.new(1)
        out += split(ctx, combined, [after[j] for j in right], "split off a leading axis by a reshape")
    return out


def reorder(ctx: Context, node: Node) -> Value:
    """``permute``, ``transpose``, ``movedim``, ``swapaxes``, ``.T``: the same op on a tensor whose sizes are its
    axis numbers tells where each axis goes."""
    x = ctx.layouts(node.args[0])
    probe = torch.empty(tuple(range(1, len(x) + 1)), device="meta")
    name = op_name(node)
    if name == "getattr":
        moved = getattr(probe, str(node.args[1]))
    else:
        moved = getattr(torch.Tensor, name)(probe, *node.args[1:], **node.kwargs)
    return [x[size - 1] for size in moved.shape]


def unsqueeze(ctx: Context, node: Node) -> Value:
    x = ctx.layouts(node.args[0])
    dim = _axis(ctx.arg(node, 1, "dim"), len(x) + 1)
    return [*x[:dim], ctx.new(1), *x[dim:]]


def squeeze(ctx: Context, node: Node) -> Value:
    """``squeeze(dim)`` (``dim`` an axis or a tuple of them; absent: every axis of size 1)."""
    x = ctx.layouts(node.args[0])
    dim = ctx.arg(node, 1, "dim")
    sizes = [ctx.classes.length(layout) for layout in x]
    dropped = {d for d in axes_of(dim, len(x)) if sizes[d] == 1}
    return [layout for axis, layout in enumerate(x) if axis not in dropped]


def expand(ctx: Context, node: Node) -> Value:
    """``expand``: axes of size 1 repeated (constant along them: tied to nothing); the others stay."""
    x = ctx.layouts(node.args[0])
    after = ctx.shape(node)
    x = [ctx.new(1) for _ in range(len(after) - len(x))] + x
    return [layout if ctx.classes.length(layout) == size else ctx.new(size)
            for layout, size in zip(x, after, strict=True)]


REDUCTION_ARGUMENTS = {"norm": (2, 3), "std": (1, 3), "var": (1, 3)}
"""Positions of ``dim`` and ``keepdim`` where they are not 1 and 2 (``norm(p, dim, keepdim)``,
``var(dim, unbiased, keepdim)``)."""


def reduce(ctx: Context, node: Node) -> Value:
    """``mean``, ``sum``, ``amax``, ``norm``, ... over ``dim`` (all axes when absent), with ``keepdim``."""
    x = ctx.layouts(node.args[0])
    at_dim, at_keep = REDUCTION_ARGUMENTS.get(op_name(node), (1, 2))
    dims = axes_of(ctx.arg(node, at_dim, "dim"), len(x))
    keep = bool(ctx.arg(node, at_keep, "keepdim", False))
    return [ctx.new(1) if i in dims else layout for i, layout in enumerate(x) if keep or i not in dims]


def concatenate(ctx: Context, node: Node) -> Value:
    parts = [ctx.layouts(p) for p in ctx.arg(node, 0, "tensors")]
    dim = _axis(ctx.arg(node, 1, "dim", 0), len(parts[0]))
    for part in parts[1:]:
        for axis, layout in enumerate(part):
            if axis != dim:
                ctx.tie(parts[0][axis], layout)
    joined = tuple(segment for part in parts for segment in ctx.classes.expand(part[dim]))
    return [joined if axis == dim else layout for axis, layout in enumerate(parts[0])]


def stack(ctx: Context, node: Node) -> Value:
    parts = [ctx.layouts(p) for p in ctx.arg(node, 0, "tensors")]
    for part in parts[1:]:
        for a, b in zip(parts[0], part, strict=True):
            ctx.tie(a, b)
    dim = _axis(ctx.arg(node, 1, "dim", 0), len(parts[0]) + 1)
    new = ctx.new(len(parts))
    ctx.fix(new, "axis of stacked tensors")
    return [*parts[0][:dim], new, *parts[0][dim:]]


def chunks(ctx: Context, node: Node) -> Value:
    """``split``, ``chunk``, ``unbind``: parts along one axis, which stays."""
    x = ctx.layouts(node.args[0])
    name = op_name(node)
    dim = _axis(ctx.arg(node, 1 if name == "unbind" else 2, "dim", 0), len(x))
    parts = node.meta.get("tensor_meta") or ()
    if name != "unbind":
        cut = ctx.classes.cut(x[dim], [int(meta.shape[dim]) for meta in parts])
        if cut is not None:  # each part keeps its own layout, as the parts of a concatenation do
            return tuple([piece if axis == dim else layout for axis, layout in enumerate(x)] for piece in cut)
    ctx.fix(x[dim], f"axis cut into parts by {name}")
    out = []
    for meta in parts:
        if name == "unbind":
            out.append(x[:dim] + x[dim + 1:])
            continue
        part = ctx.new(int(meta.shape[dim]))
        ctx.fix(part, f"axis cut into parts by {name}")
        out.append([part if axis == dim else layout for axis, layout in enumerate(x)])
    return tuple(out)


def getitem(ctx: Context, node: Node) -> Value:
    """``x[index]`` on a tensor (ints, slices, None, Ellipsis), or an item of a tuple of tensors."""
    source, index = node.args[0], ctx.arg(node, 1, "index")
    value = ctx.value(source)
    if isinstance(value, tuple):
        return value[index]
    if not isinstance(value, list):
        return None  # an item of a shape
    items = list(index) if isinstance(index, tuple) else [index]
    if any(isinstance(i, Node | list) for i in items):  # advanced indexing: positions chosen by a tensor
        ctx.fix_all(value, "indexing by a tensor or a list")
        picked = [ctx.new(s) for s in ctx.shape(node)]
        ctx.fix_all(picked, "indexing by a tensor or a list")
        return picked
    if Ellipsis in items:
        at = items.index(Ellipsis)
        taken = sum(1 for i in items if i is not None and i is not Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(value) - taken)
    out: list[Layout] = []
    shape, axis = ctx.shape(node), 0
    for item in [*items, *[slice(None)] * (len(value) - sum(1 for i in items if i is not None))]:
        if item is None:
            out.append(ctx.new(1))
            continue
        layout = value[axis]
        axis += 1
        if isinstance(item, int):
            ctx.fix(layout, "selects one position of the axis")
        elif item == slice(None):
            out.append(layout)
        else:  # a partial slice, its bounds constants or sizes of other tensors
            ctx.fix(layout, "takes part of the axis")
            out.append(ctx.new(shape[len(out)]))
    return out


def attribute(ctx: Context, node: Node) -> Value:
    """``getattr(x, name)``: ``.T``/``.mT`` reorder axes, ``.data`` is ``x``; ``shape``, ``dtype``, ``device`` are
    not tensors."""
    if node.args[1] in ("T", "mT"):
        return reorder(ctx, node)
    if node.args[1] == "data":
        return ctx.layouts(node.args[0])
    return None


def no_tensor(ctx: Context, node: Node) -> Any:
    """Ops on sizes (``x.size(1)``, ``x.dim()``)."""
    return None
