"""What an op rule sees of the traced graph: the layouts of its inputs, shapes, parameters, and the tie/fix calls.

A rule (:mod:`permlmc.tracing.rules`) is ``rule(ctx, node) -> Value``: given a graph node whose inputs already
have layouts, it ties or fixes axes and returns the layouts of the node's output (:data:`Value`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.fx import Node

from permlmc.tracing.classes import AxisClasses, Layout

Value = list[Layout] | tuple["Value", ...] | None
"""A node's output: one layout per axis of a tensor, a tuple of values, or None (not a tensor: a shape, a dtype)."""


class TraceError(ValueError):
    """The network cannot be traced, or holds an op whose effect on permutations is unknown."""


@dataclass
class Context:
    """The derivation's state while the graph is walked in order (module doc)."""

    classes: AxisClasses = field(default_factory=AxisClasses)
    values: dict[Node, Value] = field(default_factory=dict)
    params: dict[str, list[Layout]] = field(default_factory=dict)
    """State-dict key -> the layout of each of its axes."""
    used: set[str] = field(default_factory=set)
    """State-dict keys some rule related to the graph (the others stay in place)."""
    where: str = ""
    """The node being handled, for reasons and errors: ``Conv2d `features.0```."""
    module: nn.Module | None = None
    """The module of a ``call_module`` node."""
    path: str = ""
    """Its qualified name (or the innermost module around a function call)."""

    # inputs
    def value(self, arg: Any) -> Value:
        """What an argument holds: a traced node's value, or None for a constant."""
        return self.values.get(arg) if isinstance(arg, Node) else None

    def layouts(self, arg: Any) -> list[Layout]:
        """The layouts of a tensor argument (a :class:`TraceError` if ``arg`` is no traced tensor)."""
        value = self.value(arg)
        if not isinstance(value, list):
            raise TraceError(f"{self.where}: expected a tensor argument, got {arg!r}")
        return value

    @staticmethod
    def shape(node: Any) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta") if isinstance(node, Node) else None
        if meta is None or not hasattr(meta, "shape"):
            raise TraceError(f"no tensor shape recorded for {node!r}")
        return tuple(int(s) for s in meta.shape)

    @staticmethod
    def arg(node: Node, index: int, name: str, default: Any = None) -> Any:
        """Argument ``index`` (positional) or ``name`` (keyword) of ``node``."""
        if len(node.args) > index:
            return node.args[index]
        return node.kwargs.get(name, default)

    def setting(self, name: str) -> Any:
        """Attribute ``name`` of the called module (``groups``, ``normalized_shape``)."""
        if self.module is None:
            raise TraceError(f"{self.where}: no module to read {name!r} from")
        return getattr(self.module, name)

    # parameters of the current module
    def param(self, name: str) -> list[Layout] | None:
        """Layouts of the current module's parameter or buffer ``name`` (None when it has none of that name)."""
        key = f"{self.path}.{name}" if self.path else name
        return self.entry(key)

    def entry(self, key: str) -> list[Layout] | None:
        """Layouts of state-dict entry ``key`` (None when there is no such entry), now related to the graph."""
        if key not in self.params:
            return None
        self.used.add(key)
        return self.params[key]

    # relations
    def new(self, size: int) -> Layout:
        """A fresh axis of ``size`` units."""
        return self.classes.new(size)

    def tie(self, first: Layout, second: Layout) -> None:
        self.classes.tie(first, second, self.where)

    def fix(self, layout: Layout, reason: str) -> None:
        self.classes.fix(layout, f"{reason} ({self.where})")

    def fix_all(self, layouts: list[Layout], reason: str) -> None:
        for layout in layouts:
            self.fix(layout, reason)


def op_name(node: Node) -> str:
    """The name of the op a node calls: a method's name, a function's ``__name__``, a module's path."""
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def axes_of(dim: Any, ndim: int) -> set[int]:
    """The axes ``dim`` names (an int, a sequence of them, or None for all), non-negative."""
    if dim is None:
        return set(range(ndim))
    return {d % ndim for d in (dim if isinstance(dim, tuple | list) else (dim,))}


def tensors(value: Value) -> Iterator[list[Layout]]:
    """Every tensor's layouts in a (nested) value."""
    if isinstance(value, list):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from tensors(item)
