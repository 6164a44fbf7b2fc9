"""The registry of op rules: what each traced op does to permutations of its axes.

A graph node is a module call (looked up by the module's class, through its bases), a function call (by the
function; another library's by :data:`LIBRARY_FUNCTIONS`) or a method call (by name). An op found in none of
:data:`MODULES`, :data:`FUNCTIONS`, :data:`LIBRARY_FUNCTIONS`, :data:`METHODS` stops the derivation with a
:class:`~permlmc.tracing.context.TraceError` naming it: an unknown op is never guessed to be harmless.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx import Node

from permlmc.tracing import layers, products, shapes
from permlmc.tracing.context import Context, TraceError, Value

Rule = Callable[[Context, Node], Value]

ENTRYWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
    nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.Mish, nn.Softsign, nn.Tanhshrink, nn.Dropout,
    nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Softmax, nn.LogSoftmax, nn.Softmax2d,
)
"""Modules without parameters that act on each entry alone (or, like softmax, reorder with their axis)."""

ENTRYWISE_FUNCTIONS = (
    torch.relu, torch.relu_, F.relu, F.relu_, F.relu6, F.gelu, F.silu, F.mish, F.hardswish, F.hardsigmoid,
    F.hardtanh, F.leaky_relu, F.elu, F.selu, F.celu, F.softplus, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.softmax, torch.softmax, F.log_softmax,
    torch.log_softmax, torch.exp, torch.log, torch.sqrt, torch.rsqrt, torch.abs, torch.neg, torch.erf,
    torch.clamp, torch.clip, torch.square, operator.neg, torch.nn.functional.normalize,
)
ENTRYWISE_METHODS = (
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "exp_", "log", "sqrt", "rsqrt", "abs", "neg",
    "erf", "clamp", "clamp_", "clip", "square", "float", "double", "half", "bfloat16", "to", "type", "type_as",
    "contiguous", "clone", "detach", "cpu", "cuda", "softmax", "log_softmax",
)
BROADCAST_FUNCTIONS = (
    operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.isub, operator.imul,
    operator.itruediv, operator.pow, operator.floordiv, operator.mod, torch.add, torch.sub, torch.mul, torch.div,
    torch.maximum, torch.minimum, torch.where, torch.pow,
)
BROADCAST_METHODS = ("add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "pow", "maximum", "minimum",
                     "masked_fill")
REDUCTIONS = ("mean", "sum", "amax", "amin", "std", "var", "logsumexp", "prod", "norm")
REORDERS = ("permute", "transpose", "movedim", "moveaxis", "swapaxes", "swapdims")

_conv_function = lambda c, n: layers.convolution(c, n, layers.function_param, layers.group_count(n, 6))  # noqa: E731
_normalized = lambda n: len(s) if isinstance(s := Context.arg(n, 1, "normalized_shape"), tuple | list) else 1  # noqa: E731

MODULES: dict[type[nn.Module], Rule] = {
    **{module: shapes.same for module in ENTRYWISE_MODULES},
    nn.PReLU: lambda c, n: layers.channel_norm(c, n, layers.module_param, ("weight",))
    if int(c.setting("num_parameters")) > 1 else shapes.same(c, n),
    nn.Flatten: shapes.flatten,
    nn.Unflatten: shapes.reshape,
    nn.MultiheadAttention: products.multihead_attention,
    **layers.module_rules(),
}
FUNCTIONS: dict[Callable[..., object], Rule] = {
    **{function: shapes.same for function in ENTRYWISE_FUNCTIONS},
    **{function: shapes.broadcast for function in BROADCAST_FUNCTIONS},
    **{getattr(torch, name): shapes.reduce for name in REDUCTIONS},
    **{getattr(torch, name): shapes.reorder for name in REORDERS},
    F.linear: lambda c, n: layers.linear(c, n, layers.function_param),
    F.conv1d: _conv_function, F.conv2d: _conv_function, F.conv3d: _conv_function,
    F.batch_norm: lambda c, n: layers.channel_norm(c, n, layers.function_param,
                                                   ("running_mean", "running_var", "weight", "bias")),
    F.layer_norm: lambda c, n: layers.last_axes_norm(c, n, layers.function_param, _normalized(n)),
    F.rms_norm: lambda c, n: layers.last_axes_norm(c, n, layers.function_param, _normalized(n)),
    F.group_norm: lambda c, n: layers.group_norm(c, n, layers.function_param, int(Context.arg(n, 1, "num_groups"))),
    F.embedding: lambda c, n: layers.embedding(c, n, layers.function_param),
    **{getattr(F, name): layers.pooling(int(name[-2])) for name in (
        "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
        "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
        "adaptive_max_pool3d")},
    F.interpolate: layers.spatial,
    torch.flatten: shapes.flatten,
    torch.reshape: shapes.reshape,
    torch.cat: shapes.concatenate, torch.concat: shapes.concatenate, torch.concatenate: shapes.concatenate,
    torch.stack: shapes.stack,
    torch.split: shapes.chunks, torch.chunk: shapes.chunks, torch.unbind: shapes.chunks,
    torch.unsqueeze: shapes.unsqueeze, torch.squeeze: shapes.squeeze,
    torch.matmul: products.matmul, operator.matmul: products.matmul, torch.bmm: products.matmul,
    F.scaled_dot_product_attention: products.attention,
    operator.getitem: shapes.getitem,
    getattr: shapes.attribute,
}
METHODS: dict[str, Rule] = {
    **{name: shapes.same for name in ENTRYWISE_METHODS},
    **{name: shapes.broadcast for name in BROADCAST_METHODS},
    **{name: shapes.reduce for name in REDUCTIONS},
    **{name: shapes.reorder for name in (*REORDERS, "t")},
    "flatten": shapes.flatten, "view": shapes.reshape, "reshape": shapes.reshape, "unflatten": shapes.reshape,
    "view_as": shapes.reshape, "reshape_as": shapes.reshape,
    "unsqueeze": shapes.unsqueeze, "squeeze": shapes.squeeze, "expand": shapes.expand, "expand_as": shapes.expand,
    "split": shapes.chunks, "chunk": shapes.chunks, "unbind": shapes.chunks,
    "matmul": products.matmul, "bmm": products.matmul,
    "size": shapes.no_tensor, "dim": shapes.no_tensor, "numel": shapes.no_tensor,
}


def _stochastic_depth(ctx: Context, node: Node) -> Value:
    """torchvision's stochastic depth: the identity in inference (``training=False``, as traced in eval mode);
    refused in training mode, where it drops whole examples at random."""
    if Context.arg(node, 3, "training", True) is not False:
        raise TraceError(f"{ctx.where}: stochastic depth in training mode drops whole examples at random")
    return shapes.same(ctx, node)


LIBRARY_FUNCTIONS: dict[tuple[str, str], Rule] = {
    ("torchvision.ops.stochastic_depth", "stochastic_depth"): _stochastic_depth,
}
"""Functions of other libraries that torch.fx keeps whole, by (module, name). Looked up without importing the
library: a graph can hold one of its functions only where a model imported it, and a process that derives the spec
of a network without torchvision does not pay torchvision's import."""


def _library_rule(function: object) -> Rule | None:
    """The rule of ``function`` if it is the function :data:`LIBRARY_FUNCTIONS` names, as its loaded module holds it."""
    module, name = getattr(function, "__module__", None), getattr(function, "__name__", None)
    if not isinstance(module, str) or not isinstance(name, str):
        return None
    rule = LIBRARY_FUNCTIONS.get((module, name))
    return rule if rule is not None and getattr(sys.modules.get(module), name, None) is function else None


def module_rule(module: nn.Module) -> Rule | None:
    """The rule of ``module``'s class, or of its nearest registered base class."""
    for cls in type(module).__mro__:
        if cls in MODULES:
            return MODULES[cls]
    return None


def rule_for(node: Node, module: nn.Module | None) -> Rule | None:
    if node.op == "call_module":
        return module_rule(module) if module is not None else None
    if node.op == "call_function":
        return FUNCTIONS.get(node.target) or _library_rule(node.target)  # type: ignore[arg-type]
    if node.op == "call_method":
        return METHODS.get(str(node.target))
    return None
