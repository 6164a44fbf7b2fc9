"""Op rules of layers with parameters, pooling and normalisation (see :mod:`permlmc.tracing.rules`).

Each rule states what the layer does to its axes, in the tensors' own layout (``Linear.weight`` is
``(out, in)``, ``Conv2d.weight`` ``(out, in / groups, *kernel)``, activations ``(N, C, *spatial)``):

* Linear: its input's last axis is the weight's axis 1, its output's last axis the weight's axis 0 and the bias.
* Convolution: likewise on the channel axis (1); the weight's kernel axes and the spatial axes of input and output
  stay (a kernel mixes neighbouring positions). With ``groups = g > 1`` channels move only as whole groups
  (depthwise: ``g`` = channels, each channel its own group).
* BatchNorm, InstanceNorm: per channel; the affine parameters and running statistics move with the channels.
* LayerNorm, RMSNorm: statistics over the last ``k`` axes are symmetric in them; the parameters ``(k axes)``
  move with them. GroupNorm with ``g`` groups: channels move as whole groups (any order for ``g`` = 1 or ``g`` = C).
* Pooling, resizing: per channel; the spatial axes stay.
* Embedding: the vocabulary rows are indexed by the input and stay; the embedding axis is the output's last.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torch.fx import Node

from permlmc.tracing.classes import Layout
from permlmc.tracing.context import Context, TraceError, Value

Params = Callable[[Context, Node, str, int], list[Layout] | None]


def module_param(ctx: Context, node: Node, name: str, index: int) -> list[Layout] | None:
    """A parameter of the called module, by name."""
    return ctx.param(name)


def function_param(ctx: Context, node: Node, name: str, index: int) -> list[Layout] | None:
    """A parameter passed to a function (``F.linear(x, weight, bias)``), by position or keyword."""
    arg = ctx.arg(node, index, name)
    return ctx.layouts(arg) if isinstance(arg, Node) else None


def _blocked(layout: Layout, block: int) -> Layout:
    return tuple((element, b * block) for element, b in layout)


def linear(ctx: Context, node: Node, params: Params) -> Value:
    x = ctx.layouts(node.args[0])
    weight, bias = params(ctx, node, "weight", 1), params(ctx, node, "bias", 2)
    if weight is None or len(weight) != 2:
        raise TraceError(f"{ctx.where}: a linear layer needs a 2-d weight")
    ctx.tie(x[-1], weight[1])
    if bias:
        ctx.tie(bias[0], weight[0])
    return [*x[:-1], weight[0]]


def convolution(ctx: Context, node: Node, params: Params, groups: int) -> Value:
    x = ctx.layouts(node.args[0])
    weight, bias = params(ctx, node, "weight", 1), params(ctx, node, "bias", 2)
    if weight is None:
        raise TraceError(f"{ctx.where}: a convolution needs a weight")
    spatial = len(weight) - 2
    channel = len(x) - spatial - 1
    out_shape = ctx.shape(node)
    c_in, c_out = ctx.classes.length(x[channel]), ctx.classes.length(weight[0])
    if groups == 1:
        ctx.tie(x[channel], weight[1])
    else:  # a permutation of the groups, each group's channels kept together
        group = ctx.new(groups)
        ctx.tie(x[channel], _blocked(group, c_in // groups))
        ctx.tie(weight[0], _blocked(group, c_out // groups))
        ctx.fix(weight[1], "channels within a group of a grouped convolution")
    if bias:
        ctx.tie(bias[0], weight[0])
    ctx.fix_all(weight[2:], "kernel window")
    ctx.fix_all(x[channel + 1:], "spatial axis of a convolution")
    out = [ctx.new(s) for s in out_shape[channel + 1:]]
    ctx.fix_all(out, "spatial axis of a convolution")
    return [*x[:channel], weight[0], *out]


def channel_norm(ctx: Context, node: Node, params: Params, names: tuple[str, ...]) -> Value:
    """BatchNorm, InstanceNorm: parameters ``names`` (absent ones skipped) per channel, axis 1."""
    x = ctx.layouts(node.args[0])
    channel = 1 if len(x) > 1 else 0
    for index, name in enumerate(names):
        entry = params(ctx, node, name, index + 1)
        if entry:
            ctx.tie(entry[0], x[channel])
    if node.op == "call_module":
        ctx.param("num_batches_tracked")
    return x


def last_axes_norm(ctx: Context, node: Node, params: Params, k: int) -> Value:
    """LayerNorm, RMSNorm over the last ``k`` axes."""
    x = ctx.layouts(node.args[0])
    for index, name in enumerate(("weight", "bias")):
        entry = params(ctx, node, name, index + 2)
        if entry:
            for axis, layout in zip(entry, x[-k:], strict=True):
                ctx.tie(axis, layout)
    return x


def group_norm(ctx: Context, node: Node, params: Params, groups: int) -> Value:
    x = ctx.layouts(node.args[0])
    channels = ctx.classes.length(x[1])
    if 1 < groups < channels:
        ctx.tie(x[1], _blocked(ctx.new(groups), channels // groups))
    for index, name in enumerate(("weight", "bias")):
        entry = params(ctx, node, name, index + 2)
        if entry:
            ctx.tie(entry[0], x[1])
    return x


def spatial(ctx: Context, node: Node, dims: int | None = None) -> Value:
    """Pooling and resizing over the last ``dims`` axes (default: all but batch and channel)."""
    x = ctx.layouts(node.args[0])
    out_shape = ctx.shape(node)
    dims = len(x) - 2 if dims is None else dims
    ctx.fix_all(x[len(x) - dims:], "spatial axis of pooling or resizing")
    out = [ctx.new(s) for s in out_shape[len(out_shape) - dims:]]
    ctx.fix_all(out, "spatial axis of pooling or resizing")
    return [*x[:len(x) - dims], *out]


def embedding(ctx: Context, node: Node, params: Params) -> Value:
    ids = ctx.layouts(node.args[0])
    weight = params(ctx, node, "weight", 1)
    if weight is None:
        raise TraceError(f"{ctx.where}: an embedding needs a weight")
    ctx.fix(weight[0], "vocabulary rows indexed by the input")
    return [*ids, weight[1]]


def _normalized_axes(ctx: Context) -> int:
    shape = ctx.setting("normalized_shape")
    return 1 if isinstance(shape, int) else len(shape)


def pooling(dims: int) -> Callable[[Context, Node], Value]:
    def rule(ctx: Context, node: Node) -> Value:
        return spatial(ctx, node, dims)

    return rule


def module_rules() -> dict[type[nn.Module], Callable[[Context, Node], Value]]:
    """Rules of the parametrised ``torch.nn`` modules, by class."""
    def conv(c: Context, n: Node) -> Value:
        return convolution(c, n, module_param, int(c.setting("groups")))

    norm_names = ("weight", "bias", "running_mean", "running_var")
    pools = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
             nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
             nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d)
    return {
        nn.Linear: lambda c, n: linear(c, n, module_param),
        nn.Conv1d: conv, nn.Conv2d: conv, nn.Conv3d: conv,
        nn.BatchNorm1d: lambda c, n: channel_norm(c, n, module_param, norm_names),
        nn.BatchNorm2d: lambda c, n: channel_norm(c, n, module_param, norm_names),
        nn.BatchNorm3d: lambda c, n: channel_norm(c, n, module_param, norm_names),
        nn.InstanceNorm1d: lambda c, n: channel_norm(c, n, module_param, norm_names),
        nn.InstanceNorm2d: lambda c, n: channel_norm(c, n, module_param, norm_names),
        nn.LayerNorm: lambda c, n: last_axes_norm(c, n, module_param, _normalized_axes(c)),
        nn.RMSNorm: lambda c, n: last_axes_norm(c, n, module_param, _normalized_axes(c)),
        nn.GroupNorm: lambda c, n: group_norm(c, n, module_param, int(c.setting("num_groups"))),
        nn.Embedding: lambda c, n: embedding(c, n, module_param),
        nn.Upsample: lambda c, n: spatial(c, n),
        **{pool: pooling(int(pool.__name__[-2])) for pool in pools},
    }


def group_count(node: Node, index: int) -> int:
    groups = Context.arg(node, index, "groups", 1)
    if not isinstance(groups, int):
        raise TraceError(f"groups of {node.target} must be a constant, got {groups!r}")
    return groups
