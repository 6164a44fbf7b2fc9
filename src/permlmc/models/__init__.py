"""Model registry: every family provides a module builder and its permutation spec; a network of the user's own
(:mod:`permlmc.models.user`) is an :class:`Architecture` with a ``factory``, its spec derived from its graph."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from permlmc.model_names import NORM_SEPARATOR, split_model_name
from permlmc.models import cnn, mlp, resnet, user, vgg, vit
from permlmc.models.normalization import NORMS
from permlmc.permutation import PermutationSpec

RESIDUAL_MODES = ("internal", "full")
"""How residual streams are permuted (see :mod:`permlmc.models.resnet`): ``"internal"`` permutes only channels inside
residual blocks; ``"full"`` also gives every residual stream one shared permutation. Families without residual
connections ignore the mode."""

SpecFunction = Callable[["Architecture", str], PermutationSpec]
"""``spec(arch, residual)``: the permutation spec of ``arch`` in residual mode ``residual``."""


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild a network: model name (family and normalisation, :mod:`permlmc.model_names`),
    depth (MLP hidden layers, CNN conv layers, the VGG/ResNet depth: 11/13/16/19, 20/32/44/56 and 18/34/50, or
    ViT encoder blocks), width (units, first-stage channels or a ViT's embedding width; ResNet-20 "x k" has width
    16 k), data shape. A user's network names its ``factory`` (``package.module:function``) and keyword arguments;
    ``model_name`` is then the first part of its :attr:`name` in paths and tables. The config key, table column and
    sidecar key ``arch`` hold ``model_name``; :attr:`family` is the :data:`MODELS` key it belongs to."""

    model_name: str
    depth: int
    width: int
    input_shape: tuple[int, int, int]
    num_classes: int
    factory: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    trace: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """How the spec of a user's network is traced: ``entrywise`` (module paths or class names) and ``pinned``
    (state-dict key -> axes left in place), as :class:`permlmc.tracing.TraceOptions` takes them."""

    def __post_init__(self) -> None:
        for key in ("depth", "width", "num_classes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)}")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        if self.factory is not None:
            if not USER_NAME.fullmatch(self.model_name) or self.model_name in model_names():
                raise ValueError(f"a network of your own needs a name of lower-case letters and digits that is not "
                                 f"a registered model ({model_names()}), got {self.model_name!r}")
            return
        if self.model_name not in model_names():
            raise ValueError(f"arch {self.model_name!r} is not registered; choose one of {model_names()}")
        allowed = MODELS[self.family].depths
        if allowed is not None and self.depth not in allowed:
            raise ValueError(f"{self.model_name} has no depth {self.depth}; choose one of {allowed}")

    @property
    def family(self) -> str:
        """The registered family (:data:`MODELS` key): the model name before its normalisation suffix."""
        return split_model_name(self.model_name)[0]

    @property
    def norm(self) -> str | None:
        """The normalisation after each convolution (:data:`permlmc.models.normalization.NORMS`), or None for
        families without the option."""
        norms = MODELS[self.family].norms if self.factory is None else ()
        if not norms:
            return None
        return split_model_name(self.model_name)[1] or norms[0]

    @property
    def name(self) -> str:
        """The path component used by the workflow: ``mlp-d1-w512``."""
        return f"{self.model_name}-d{self.depth}-w{self.width}"

    def to_dict(self) -> dict[str, Any]:
        out = {"arch": self.model_name, "depth": self.depth, "width": self.width,
               "input_shape": list(self.input_shape), "num_classes": self.num_classes}
        if self.factory is None:
            return out
        return {**out, "factory": self.factory, "kwargs": dict(self.kwargs), **({"trace": dict(self.trace)}
                                                                                if self.trace else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        return cls(
            model_name=data["arch"], depth=int(data["depth"]), width=int(data["width"]),
            input_shape=tuple(data["input_shape"]), num_classes=int(data["num_classes"]),
            factory=data.get("factory"), kwargs=dict(data.get("kwargs") or {}), trace=dict(data.get("trace") or {}),
        )


@dataclass(frozen=True)
class Family:
    build: Callable[[Architecture], nn.Module]
    spec: SpecFunction
    depths: tuple[int, ...] | None = None
    """Allowed depths (``None``: any positive depth)."""
    example_depths: tuple[int, ...] = (1,)
    """Small depths every invariance test runs over."""
    example_width: int = 6
    """A small width the family accepts, for the invariance tests."""
    norms: tuple[str, ...] = ()
    """Normalisations the family can take (the first is its default), or () for no ``norm`` option."""


MODELS: dict[str, Family] = {
    "mlp": Family(build=mlp.build, spec=mlp.permutation_spec, example_depths=(1, 2, 3)),
    "cnn": Family(build=cnn.build, spec=cnn.permutation_spec, example_depths=(1, 2, 4)),
    "vgg": Family(
        build=vgg.build, spec=vgg.permutation_spec, depths=tuple(vgg.CONVS_PER_STAGE), example_depths=(11,),
        norms=tuple(NORMS),
    ),
    "resnet": Family(
        build=resnet.build, spec=resnet.permutation_spec, depths=tuple(resnet.STAGES), example_depths=(20, 18, 50),
        norms=tuple(NORMS),
    ),
    "vit": Family(build=vit.build, spec=vit.permutation_spec, example_depths=(1, 2), example_width=8),
}


def model_names() -> list[str]:
    """Every name an :class:`Architecture` accepts: each family, and each family with each non-default norm."""
    return [name for family, entry in MODELS.items()
            for name in (family, *(f"{family}{NORM_SEPARATOR}{n}" for n in entry.norms[1:]))]


USER_NAME = re.compile(r"[a-z][a-z0-9]*")
"""The name of a network of the user's own (one path component, no normalisation suffix)."""


def build_model(arch: Architecture) -> nn.Module:
    return user.build(arch) if arch.factory is not None else MODELS[arch.family].build(arch)


def residual_streams(arch: Architecture) -> tuple[str, ...]:
    """The permutations of ``arch``'s residual streams: those of mode ``"full"`` that mode ``"internal"`` lacks
    (none for families without residual connections; a network of the user's own has no ``"internal"`` mode)."""
    if arch.factory is not None:
        raise ValueError(f"{arch.model_name} is a network of your own: its residual streams are not known by name "
                         "(its spec is derived whole); leave axes in place with its trace.pinned option instead")
    internal = set(permutation_spec(arch, "internal").names)
    return tuple(name for name in permutation_spec(arch, "full").names if name not in internal)


def permutation_spec(arch: Architecture, residual: str = "full") -> PermutationSpec:
    """The permutation spec of ``arch``; ``residual`` (one of :data:`RESIDUAL_MODES`) picks how residual streams
    are permuted and is ignored by families without them."""
    if residual not in RESIDUAL_MODES:
        raise ValueError(f"unknown residual mode {residual!r}; choose one of {RESIDUAL_MODES}")
    if arch.factory is not None:
        return user.permutation_spec(arch, residual)
    return MODELS[arch.family].spec(arch, residual)
