"""Op rules of products of two activations (see :mod:`permlmc.tracing.rules`): ``matmul`` and attention contract
an axis of one operand with an axis of the other, which are tied (the sum is symmetric in a joint reordering of
the two); the other axes pass through, batch axes broadcast. Where positions matter (an attention mask, causal
order), the query and key positions stay.
"""

from __future__ import annotations

from torch.fx import Node

from permlmc.tracing.classes import Layout
from permlmc.tracing.context import Context, TraceError, Value


def matmul(ctx: Context, node: Node) -> Value:
    """``a @ b`` for operands of at least 2 axes: ``(..., n, k) @ (..., k, m) -> (..., n, m)``."""
    a, b = ctx.layouts(node.args[0]), ctx.layouts(node.args[1])
    if len(a) < 2 or len(b) < 2:
        raise TraceError(f"{ctx.where}: matmul of a vector is not supported")
    ctx.tie(a[-1], b[-2])
    return [*_batch(ctx, a[:-2], b[:-2], ctx.shape(node)[:-2]), a[-2], b[-1]]


def attention(ctx: Context, node: Node) -> Value:
    """``scaled_dot_product_attention(q, k, v)``: q ``(..., L, E)``, k ``(..., S, E)``, v ``(..., S, Ev)``."""
    q, k, v = (ctx.layouts(ctx.arg(node, i, name)) for i, name in enumerate(("query", "key", "value")))
    ctx.tie(q[-1], k[-1])
    ctx.tie(k[-2], v[-2])
    if ctx.arg(node, 7, "enable_gqa", False):
        raise TraceError(f"{ctx.where}: grouped-query attention (enable_gqa) is not supported")
    mask = ctx.value(ctx.arg(node, 3, "attn_mask"))
    if isinstance(mask, list) or ctx.arg(node, 5, "is_causal", False):  # positions matter: queries and keys stay
        ctx.fix_all([*(mask if isinstance(mask, list) else []), q[-2], k[-2]], "attention mask or causal order")
    batch = ctx.shape(node)[:-2]
    return [*_batch(ctx, _batch(ctx, q[:-2], k[:-2], batch), v[:-2], batch), q[-2], v[-1]]


def _batch(ctx: Context, a: list[Layout], b: list[Layout], shape: tuple[int, ...]) -> list[Layout]:
    """Broadcast batch axes of two operands to ``shape``."""
    out: list[Layout] = []
    a = [ctx.new(1)] * (len(shape) - len(a)) + a
    b = [ctx.new(1)] * (len(shape) - len(b)) + b
    for x, y, size in zip(a, b, shape, strict=True):
        sx, sy = ctx.classes.length(x), ctx.classes.length(y)
        if sx == sy == size:
            ctx.tie(x, y)
        out.append(x if sx == size else y if sy == size else ctx.new(size))
    return out
