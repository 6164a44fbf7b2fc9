"""Model registry: every family provides a module builder and its permutation spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from lmc.models import mlp
from lmc.permutation import PermutationSpec


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild a network: family, depth (hidden/conv layers), width, data shape."""

    arch: str
    depth: int
    width: int
    input_shape: tuple[int, int, int]
    num_classes: int

    def __post_init__(self) -> None:
        if self.arch not in MODELS:
            raise ValueError(f"arch {self.arch!r} is not registered; choose one of {sorted(MODELS)}")
        for key in ("depth", "width", "num_classes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)}")
        allowed = MODELS[self.arch].depths
        if allowed is not None and self.depth not in allowed:
            raise ValueError(f"{self.arch} has no depth {self.depth}; choose one of {allowed}")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))

    @property
    def name(self) -> str:
        """The path component used by the workflow: ``mlp-d1-w512``."""
        return f"{self.arch}-d{self.depth}-w{self.width}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        return cls(
            arch=data["arch"], depth=int(data["depth"]), width=int(data["width"]),
            input_shape=tuple(data["input_shape"]), num_classes=int(data["num_classes"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Family:
    build: Callable[[Architecture], nn.Module]
    spec: Callable[[Architecture], PermutationSpec]
    depths: tuple[int, ...] | None = None
    """Allowed depths (``None``: any positive depth)."""
    example_depths: tuple[int, ...] = (1,)
    """Small depths every invariance test runs over."""


MODELS: dict[str, Family] = {
    "mlp": Family(build=mlp.build, spec=mlp.permutation_spec, example_depths=(1, 2, 3)),
}


def build_model(arch: Architecture) -> nn.Module:
    return MODELS[arch.arch].build(arch)


def permutation_spec(arch: Architecture) -> PermutationSpec:
    return MODELS[arch.arch].spec(arch)
