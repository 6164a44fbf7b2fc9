"""Networks of the user's own: a factory named ``package.module:function`` (importable from the working
directory) with keyword arguments, and a permutation spec derived from the built network and verified on it.

The factory is called with its configured keyword arguments and, of ``width``, ``depth``, ``num_classes``,
``in_channels`` and ``input_shape`` (the data's ``(C, H, W)``), those its signature names: a network the workflow
sweeps over widths takes ``width``; one of fixed shape needs none of them. Its spec is derived on an example batch
of the data's shape (:mod:`permlmc.tracing`) and must pass verification before anything uses it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from permlmc.types import PathLike

if TYPE_CHECKING:
    from permlmc.models import Architecture
    from permlmc.permutation import PermutationSpec
    from permlmc.tracing import TraceOptions

GRID_ARGUMENTS = ("width", "depth", "num_classes", "in_channels", "input_shape")
"""What a factory is given when its signature names it (module doc)."""


class FactoryError(ValueError):
    """A model factory cannot be imported, called, or does not return an ``nn.Module``."""


def load_factory(reference: str) -> Callable[..., nn.Module]:
    """The function ``module:function`` names, imported with the working directory on ``sys.path``."""
    module_name, separator, attribute = reference.partition(":")
    if not separator or not module_name or not attribute:
        raise FactoryError(f"model factory {reference!r} must read 'package.module:function'")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises while it loads
        raise FactoryError(f"model factory {reference!r}: cannot import {module_name!r} from {cwd} "
                           f"({type(exc).__name__}: {exc})") from exc
    factory: Any = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise FactoryError(f"model factory {reference!r}: {module_name!r} has no {attribute!r}")
    if not callable(factory):
        raise FactoryError(f"model factory {reference!r} is not callable")
    return factory


def accepted(factory: Callable[..., nn.Module]) -> set[str]:
    """The names of :data:`GRID_ARGUMENTS` the factory's signature takes."""
    parameters = inspect.signature(factory).parameters
    return {name for name in GRID_ARGUMENTS if name in parameters}


def build_network(reference: str, kwargs: Mapping[str, Any] | None = None, **grid: Any) -> nn.Module:
    """Call the factory ``reference`` with ``kwargs`` and the ``grid`` arguments it takes (module doc)."""
    factory = load_factory(reference)
    arguments = {**{k: v for k, v in grid.items() if k in accepted(factory)}, **dict(kwargs or {})}
    try:
        model = factory(**arguments)
    except TypeError as exc:
        raise FactoryError(f"model factory {reference!r} rejected its arguments {arguments}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise FactoryError(f"model factory {reference!r} returned a {type(model).__name__}, not an nn.Module")
    return model


def load_state(path: PathLike) -> dict[str, torch.Tensor]:
    """A state dict saved by ``torch.save`` (tensors only: loaded with ``weights_only``) or as safetensors."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FactoryError(f"checkpoint {str(path)!r} cannot be read as a state dict: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # the common {"state_dict": ..., "epoch": ...} bundle
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FactoryError(f"checkpoint {str(path)!r} holds no state dict of tensors")
    return state


def check_state(model: nn.Module, state: Mapping[str, torch.Tensor], path: PathLike) -> None:
    """Raise :class:`FactoryError` naming ``path`` and the keys or shapes that do not fit ``model``."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = {k: (tuple(v.shape), expected[k]) for k, v in state.items()
             if k in expected and tuple(v.shape) != expected[k]}
    if missing or extra or wrong:
        raise FactoryError(f"checkpoint {str(path)!r} does not fit {type(model).__name__}: missing keys {missing[:5]}, "
                           f"unexpected keys {extra[:5]}, shapes (file, model) {dict(list(wrong.items())[:5])}")


def build(arch: Architecture) -> nn.Module:
    assert arch.factory is not None
    c = arch.input_shape[0]
    return build_network(arch.factory, arch.kwargs, width=arch.width, depth=arch.depth, num_classes=arch.num_classes,
                         in_channels=c, input_shape=tuple(arch.input_shape))


def permutation_spec(arch: Architecture, residual: str = "full") -> PermutationSpec:
    """The derived and verified spec of a user's network (residual streams permuted whole: mode ``full``)."""
    if residual != "full":
        raise ValueError(f"a derived spec permutes residual streams whole (residual mode 'full'); residual mode "
                         f"{residual!r} applies to the registered ResNets only (config key search.residual)")
    return _verified_spec(arch.factory or "", json.dumps(dict(arch.kwargs), sort_keys=True), arch.depth, arch.width,
                          tuple(arch.input_shape), arch.num_classes, json.dumps(dict(arch.trace), sort_keys=True))


def trace_options(trace: Mapping[str, Any]) -> TraceOptions:
    """:class:`permlmc.tracing.TraceOptions` from an architecture's ``trace`` (``entrywise``, ``pinned``)."""
    from permlmc.tracing import TraceOptions

    unknown = sorted(set(trace) - {"entrywise", "pinned"})
    if unknown:
        raise FactoryError(f"trace options {unknown} are unknown; use entrywise and pinned")
    return TraceOptions(entrywise=tuple(trace.get("entrywise", ())),
                        pinned={key: tuple(axes) for key, axes in trace.get("pinned", {}).items()})


@functools.lru_cache(maxsize=8)
def _verified_spec(
    factory: str, kwargs: str, depth: int, width: int, input_shape: tuple[int, ...], num_classes: int, trace: str
) -> PermutationSpec:
    from permlmc.tracing import derive_spec
    from permlmc.tracing.verify import require_verified, verify_spec

    model = build_network(factory, json.loads(kwargs), width=width, depth=depth, num_classes=num_classes,
                          in_channels=input_shape[0], input_shape=input_shape)
    example = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    derivation = derive_spec(model, example, trace_options(json.loads(trace)))
    require_verified(verify_spec(model, derivation.spec, example, fixed=derivation.fixed), factory)
    return derivation.spec
