"""Op rules of products of two activations (see :mod:`permlmc.tracing.rules`): ``matmul`` and attention contract
an axis of one operand with an axis of the other, which are tied (the sum is symmetric in a joint reordering of
the two); the other axes pass through, batch axes broadcast. Where positions matter (an attention mask, causal
order), the query and key positions stay.

``torch.nn.MultiheadAttention`` is one module: its rule states what its forward does with heads. The query and
key projections (rows of ``in_proj_weight`` in three parts, or ``q_proj_weight`` ...) are split into heads, the
value projection likewise, and the output projection's inputs are the value's units: the same relations a
hand-written attention gives the tracer (:meth:`~permlmc.tracing.classes.AxisClasses.view`).
"""

from __future__ import annotations

from torch.fx import Node

from permlmc.tracing.classes import Layout
from permlmc.tracing.context import Context, TraceError, Value, tensors


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


def multihead_attention(ctx: Context, node: Node) -> Value:
    """``nn.MultiheadAttention(query, key, value, ...)`` -> ``(output, weights or None)`` (module doc)."""
    module = ctx.module
    if module is None or module.bias_k is not None or module.add_zero_attn:
        raise TraceError(f"{ctx.where}: attention with bias_k/bias_v or add_zero_attn is not supported; give its "
                         "entries by hand (by_hand)")
    query, key, value = (ctx.layouts(ctx.arg(node, i, name)) for i, name in enumerate(("query", "key", "value")))
    width, heads = int(module.embed_dim), int(module.num_heads)
    block = width // heads
    projected = [ctx.new(width) for _ in range(3)]  # query, key, value units
    if module._qkv_same_embed_dim:
        weight = ctx.param("in_proj_weight")
        assert weight is not None
        ctx.tie(weight[0], tuple(segment for part in projected for segment in part))
        for x in (query, key, value):
            ctx.tie(x[-1], weight[1])
    else:
        for part, name, x in zip(projected, ("q_proj_weight", "k_proj_weight", "v_proj_weight"), (query, key, value),
                                 strict=True):
            weight = ctx.param(name)
            assert weight is not None
            ctx.tie(weight[0], part)
            ctx.tie(x[-1], weight[1])
    bias = ctx.param("in_proj_bias")
    if bias:
        ctx.tie(bias[0], tuple(segment for part in projected for segment in part))
    views = [ctx.classes.view(part, heads, block) for part in projected]
    if any(v is None for v in views):
        raise TraceError(f"{ctx.where}: its projections are tied to other axes before the heads split; give its "
                         "entries by hand (by_hand)")
    (q_heads, q_units), (k_heads, k_units), (v_heads, v_units) = (v for v in views if v is not None)
    ctx.tie(q_heads, k_heads)
    ctx.tie(k_heads, v_heads)
    ctx.tie(q_units, k_units)
    tokens = 1 if module.batch_first and len(query) == 3 else 0
    ctx.tie(key[tokens], value[tokens])
    masked = [ctx.value(ctx.arg(node, i, name)) for i, name in ((3, "key_padding_mask"), (5, "attn_mask"))]
    if any(isinstance(mask, list) for mask in masked) or ctx.arg(node, 7, "is_causal", False):
        ctx.fix_all([query[tokens], key[tokens], *(layout for mask in masked for t in tensors(mask) for layout in t)],
                    "attention mask or causal order")
    out_weight, out_bias = ctx.param("out_proj.weight"), ctx.param("out_proj.bias")
    assert out_weight is not None
    ctx.tie(out_weight[1], ctx.classes.joined(q_heads, v_units, ctx.where))
    if out_bias:
        ctx.tie(out_bias[0], out_weight[0])
    output = [*query[:-1], out_weight[0]]
    meta = node.meta.get("tensor_meta")
    weights_meta = meta[1] if isinstance(meta, tuple | list) and len(meta) > 1 else None
    if weights_meta is None or not hasattr(weights_meta, "shape"):
        return (output, None)
    weights = [ctx.new(int(size)) for size in weights_meta.shape]
    ctx.fix_all(weights[-2:], "attention weights, per query and key position")
    if not ctx.arg(node, 6, "average_attn_weights", True):  # one map per head: the heads axis moves with the heads
        ctx.tie(weights[-3], q_heads)
    return (output, weights)
