"""Derive a :class:`~permlmc.permutation.PermutationSpec` from any ``nn.Module`` and an example input.

The network is traced with ``torch.fx`` and its tensors' shapes recorded on the example. Every axis of every
tensor (activations and state-dict entries) starts as its own class; the rule of each op in the graph
(:mod:`permlmc.tracing.rules`) ties the axes it relates (a Linear's input axis and its weight's columns, the two
sides of a residual addition) and fixes those it cannot reorder (a convolution's spatial axes). The model's inputs
and outputs are fixed. Each class that remains free and carries more than one unit becomes one permutation,
named after the first state-dict entry it acts on; everything else stays in place, and :class:`Derivation`
records why (the op that fixed it) for the report.

Ways out when the tracer refuses a network (:class:`TraceOptions`): declare a module entrywise, give a
submodule's entries by hand (the submodule is then not traced; its inputs and outputs stay in place), or pin axes.
A derived spec is a claim until :func:`permlmc.tracing.verify.verify_spec` has checked it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor, nn

from permlmc.axes import Axes
from permlmc.permutation import PermutationSpec
from permlmc.tracing import rules, shapes
from permlmc.tracing.assemble import assemble_spec
from permlmc.tracing.context import Context, TraceError, op_name, tensors

FIXED_INPUT = "model input"
FIXED_OUTPUT = "model output"


@dataclass(frozen=True)
class TraceOptions:
    """The ways out of an op the tracer does not know (module doc)."""

    entrywise: tuple[str, ...] = ()
    """Module paths or class names that act on each entry alone (no parameters): outputs keep the input's axes."""
    by_hand: Mapping[str, Mapping[str, Axes]] = field(default_factory=dict)
    """Module path -> spec entries of its state (keys relative to it, names local to it); the module is not traced
    and its inputs and outputs stay in place. ``{}`` leaves the whole submodule in place."""
    pinned: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """State-dict key -> axes that stay in place whatever the graph says."""


@dataclass(frozen=True)
class Derivation:
    """A derived spec with what the tracer saw: why each axis left in place stays, and how long it took."""

    spec: PermutationSpec
    fixed: Mapping[tuple[str, int], str]
    """(state-dict key, axis) -> the reason it stays in place, for every axis of more than one entry no
    permutation acts on."""
    seconds: float


class _Tracer(fx.Tracer):
    """``torch.fx`` tracer that keeps modules of :class:`TraceOptions` whole and knows which module it is in."""

    def __init__(self, options: TraceOptions) -> None:
        super().__init__()
        self.options = options
        self.failed_in: str | None = None
        """The innermost module whose forward raised while traced."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if qualname in self.options.by_hand or qualname in self.options.entrywise:
            return True
        if type(m).__name__ in self.options.entrywise:
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.path_of_module(m)
            raise


def trace(model: nn.Module, examples: tuple[Tensor, ...], options: TraceOptions) -> fx.GraphModule:
    """The model's graph of inference (eval mode: dropout and stochastic depth as the identity), with shapes recorded
    on ``examples``; a :class:`TraceError` names the module fx failed in. ``model`` keeps its mode."""
    was_training = model.training
    model.eval()
    try:
        return _traced(model, examples, _Tracer(options))
    finally:
        model.train(was_training)


def _traced(model: nn.Module, examples: tuple[Tensor, ...], tracer: _Tracer) -> fx.GraphModule:
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises many kinds (TraceError, TypeError, AttributeError, ...)
        where = f" in module {tracer.failed_in!r}" if tracer.failed_in else ""
        raise TraceError(
            f"torch.fx cannot trace {type(model).__name__}{where}: {type(exc).__name__}: {exc}. Ways out: give that "
            "module's spec entries by hand (by_hand={path: {...}}; {} leaves it in place), or make its forward "
            "free of Python control flow on tensor values") from exc
    module = fx.GraphModule(model, graph)  # shares the model's submodules
    try:
        with torch.no_grad():
            _ShapeRecorder(module).run(*examples)
    except Exception as exc:
        raise TraceError(f"running the traced {type(model).__name__} on the example input failed: {exc}") from exc
    return module


@dataclass(frozen=True)
class RecordedShape:
    """The shape of a tensor the traced graph produced on the example."""

    shape: torch.Size


class _ShapeRecorder(fx.Interpreter):
    """Runs the graph on the example and records each node's output in ``node.meta["tensor_meta"]``: a
    :class:`RecordedShape`, or, for a node with several outputs, the tuple, list or dict of its outputs with each
    tensor's :class:`RecordedShape`; unset where no tensor comes out. The shapes ``torch.fx``'s ``ShapeProp`` records,
    without its fake-tensor and symbolic-shape machinery (whose first use imports sympy)."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        found = False

        def record(value: Any) -> Any:
            nonlocal found
            if isinstance(value, Tensor):
                found = True
                return RecordedShape(value.shape)
            return value

        recorded = fx.node.map_aggregate(result, record)
        if found:
            n.meta["tensor_meta"] = recorded
        return result


def derive_spec(
    model: nn.Module, example: Tensor | tuple[Tensor, ...], options: TraceOptions | None = None
) -> Derivation:
    """The permutation spec of ``model`` (module doc); ``example`` is one input batch (or a tuple of inputs)."""
    start = time.perf_counter()
    options = options or TraceOptions()
    examples = example if isinstance(example, tuple) else (example,)
    module = trace(model, examples, options)
    state = model.state_dict()
    _check_options(options, state, dict(model.named_modules()))
    ctx = Context()
    for key, value in state.items():
        ctx.params[key] = [ctx.new(size) for size in value.shape]
    modules = dict(model.named_modules())
    for node in module.graph.nodes:
        ctx.values[node] = _visit(ctx, node, modules, options)
        for layouts in tensors(ctx.values[node]):
            ctx.classes.record(layouts)
    for key, axes in options.pinned.items():
        for axis in axes:
            ctx.classes.fix(ctx.params[key][axis], "pinned by the caller")
    spec, fixed = assemble_spec(ctx, state, options)
    return Derivation(spec, fixed, time.perf_counter() - start)


def _check_options(options: TraceOptions, state: dict[str, Tensor], modules: dict[str, nn.Module]) -> None:
    for key, axes in options.pinned.items():
        if key not in state or any(not 0 <= a < state[key].ndim for a in axes):
            raise TraceError(f"pinned: {key!r} axes {tuple(axes)} is not an entry of the state dict with those axes")
    for path, entries in options.by_hand.items():
        if path not in modules:
            raise TraceError(f"by_hand: {path!r} is not a submodule of the network")
        unknown = sorted(f"{path}.{key}" for key in entries if f"{path}.{key}" not in state)
        if unknown:
            raise TraceError(f"by_hand: {unknown} are not entries of the state dict")


def _visit(ctx: Context, node: fx.Node, modules: dict[str, nn.Module], options: TraceOptions) -> Any:
    stack = node.meta.get("nn_module_stack") or {}
    ctx.path = next(reversed(stack), "") if stack else ""
    ctx.module = None
    if node.op == "placeholder":
        meta = node.meta.get("tensor_meta")
        if meta is None:
            return None
        layouts = [ctx.new(int(s)) for s in meta.shape]
        ctx.where = f"input {node.target!r}"
        ctx.fix_all(layouts, FIXED_INPUT)
        return layouts
    if node.op == "get_attr":
        ctx.where = f"parameter {node.target!r}"
        entry = ctx.entry(str(node.target))
        if entry is not None:
            return entry
        layouts = [ctx.new(s) for s in Context.shape(node)]
        ctx.fix_all(layouts, "a constant tensor of the model, not in its state dict")
        return layouts
    if node.op == "output":
        ctx.where = "the model's output"
        for layouts in tensors(_values(ctx, node.args)):
            ctx.fix_all(layouts, FIXED_OUTPUT)
        return None
    if node.op == "call_module":
        ctx.path = str(node.target)
        ctx.module = modules[ctx.path]
        ctx.where = f"{type(ctx.module).__name__} {ctx.path!r}"
        if ctx.path in options.by_hand:
            return _by_hand(ctx, node)
        if ctx.path in options.entrywise or type(ctx.module).__name__ in options.entrywise:
            return _entrywise(ctx, node)
    else:
        ctx.where = op_name(node) + (f" in {ctx.path!r}" if ctx.path else "")
    rule = rules.rule_for(node, ctx.module)
    value = _unknown(ctx, node) if rule is None else rule(ctx, node)
    _check_shapes(ctx, value, node.meta.get("tensor_meta"))
    return value


def _check_shapes(ctx: Context, value: Any, meta: Any) -> None:
    """A rule's layouts must describe the recorded output: one per axis, of the axis's length (an internal check
    of the rules: a mismatch is a bug of the tracer, reported as such)."""
    if isinstance(value, list) and meta is not None and hasattr(meta, "shape"):
        lengths = [ctx.classes.length(layout) for layout in value]
        if lengths != [int(s) for s in meta.shape]:
            raise TraceError(f"{ctx.where}: the tracer's rule gives axes of lengths {lengths} for an output of shape "
                             f"{tuple(meta.shape)}; give this module's entries by hand (by_hand) and report it")
    elif isinstance(value, tuple) and isinstance(meta, tuple | list):
        for item, item_meta in zip(value, meta, strict=False):
            _check_shapes(ctx, item, item_meta)


def _values(ctx: Context, args: Any) -> Any:
    if isinstance(args, fx.Node):
        return ctx.value(args)
    if isinstance(args, tuple | list):
        return tuple(_values(ctx, a) for a in args)
    if isinstance(args, dict):
        return tuple(_values(ctx, a) for a in args.values())
    return None


def _unknown(ctx: Context, node: fx.Node) -> Any:
    inputs = list(tensors(_values(ctx, (node.args, node.kwargs))))
    if not inputs and node.meta.get("tensor_meta") is None:
        return None  # Python on sizes and constants
    raise TraceError(
        f"cannot derive a permutation spec: {ctx.where} is an op whose effect on permutations is unknown. Ways out: "
        "declare the module entrywise (entrywise=[path or class name]) if it acts on each entry alone, give the "
        "spec entries of the module around it by hand (by_hand={path: {key: axes}}; {} leaves it in place), or "
        "rewrite it with ops the tracer knows (permlmc.tracing.rules)")


def _entrywise(ctx: Context, node: fx.Node) -> Any:
    assert ctx.module is not None
    own = [name for name, _ in ctx.module.named_parameters()]
    if own:
        raise TraceError(f"{ctx.where} is declared entrywise but has parameters {own}; give its entries by_hand")
    return shapes.same(ctx, node)


def _by_hand(ctx: Context, node: fx.Node) -> Any:
    """A submodule given by hand: its inputs and outputs stay; its entries are read later (see :func:`_spec`)."""
    for layouts in tensors(_values(ctx, (node.args, node.kwargs))):
        ctx.fix_all(layouts, "input of a submodule given by hand")
    out = _layouts_like(ctx, node.meta.get("tensor_meta"))
    for layouts in tensors(out):
        ctx.fix_all(layouts, "output of a submodule given by hand")
    return out


def _layouts_like(ctx: Context, meta: Any) -> Any:
    if meta is None:
        return None
    if hasattr(meta, "shape"):
        return [ctx.new(int(s)) for s in meta.shape]
    return tuple(_layouts_like(ctx, m) for m in meta)
