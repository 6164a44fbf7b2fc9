"""Linear interpolation between two networks and the loss/error curve along the path.

The path is ``theta(alpha) = (1 - alpha) * theta_A + alpha * theta_B`` (alpha = 0 is A, alpha = 1 is B; the
paper writes the same path as ``alpha theta_1 + (1 - alpha) theta_2``). Integer buffers such as BatchNorm's
``num_batches_tracked`` are taken from A.

``bn_mode`` records how normalisation statistics are treated along the path. ``interpolate`` (the paper's
behaviour) interpolates every floating-point entry, running statistics included; it is the only mode that
applies to networks without normalisation layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lmc.evaluation import Forward, evaluate
from lmc.types import StateDict

BN_MODES = ("interpolate",)


@dataclass(frozen=True)
class CurvePoint:
    alpha: float
    split: str
    metric: str
    value: float


def interpolate(a: StateDict, b: StateDict, alpha: float) -> StateDict:
    """``(1 - alpha) a + alpha b`` for floating entries; non-floating entries from ``a``."""
    return {
        key: torch.lerp(value, b[key], alpha) if value.is_floating_point() else value for key, value in a.items()
    }


def interpolation_curve(
    forward: Forward,
    a: StateDict,
    b: StateDict,
    alphas: Sequence[float],
    splits: Mapping[str, tuple[Tensor, Tensor]],
    *,
    bn_mode: str = "interpolate",
) -> list[CurvePoint]:
    """Loss and error at every alpha on every split: ``len(alphas) * len(splits) * 2`` points."""
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode {bn_mode!r} is not supported; choose one of {BN_MODES}")
    points = []
    for alpha in alphas:
        params = interpolate(a, b, float(alpha))
        for split, (x, y) in splits.items():
            metrics = evaluate(forward, params, x, y)
            points.append(CurvePoint(float(alpha), split, "loss", metrics.loss))
            points.append(CurvePoint(float(alpha), split, "error", metrics.error))
    return points
