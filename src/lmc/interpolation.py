"""Linear interpolation between two networks and the loss/error curve along the path.

The path is ``theta(alpha) = (1 - alpha) * theta_A + alpha * theta_B`` (alpha = 0 is A, alpha = 1 is B; the
paper writes the same path as ``alpha theta_1 + (1 - alpha) theta_2``). Integer buffers such as BatchNorm's
``num_batches_tracked`` are taken from A.

``bn_mode`` records how BatchNorm statistics are treated along the path: ``interpolate`` (the paper's
behaviour) interpolates every floating-point entry, running statistics included; ``reset`` and ``repair``
(see :mod:`lmc.normalization`) correct the statistics of each interpolated network. Networks without
BatchNorm only have ``interpolate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lmc.evaluation import evaluate, functional_forward
from lmc.normalization import batchnorm_layers, output_statistics, repair, reset_statistics
from lmc.types import StateDict

BN_MODES = ("interpolate", "reset", "repair")


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


class PathSampler:
    """Parameters of the network at any point of the path from A to B under one ``bn_mode``.

    ``batches`` (training inputs) are what ``reset`` and ``repair`` estimate statistics on.
    """

    def __init__(
        self, model: nn.Module, a: StateDict, b: StateDict, bn_mode: str = "interpolate",
        batches: Sequence[Tensor] = (),
    ) -> None:
        if bn_mode not in BN_MODES:
            raise ValueError(f"bn_mode {bn_mode!r} is unknown; choose one of {BN_MODES}")
        if bn_mode != "interpolate" and not batchnorm_layers(model):
            raise ValueError(f"bn_mode {bn_mode!r} needs BatchNorm layers; this network has none")
        if bn_mode != "interpolate" and not batches:
            raise ValueError(f"bn_mode {bn_mode!r} needs training batches to estimate statistics on")
        self.model, self.a, self.b, self.bn_mode, self.batches = model, a, b, bn_mode, batches
        if bn_mode == "repair":
            self.stats_a = output_statistics(model, a, batches)
            self.stats_b = output_statistics(model, b, batches)

    def __call__(self, alpha: float) -> StateDict:
        params = interpolate(self.a, self.b, alpha)
        if self.bn_mode == "reset":
            return reset_statistics(self.model, params, self.batches)
        if self.bn_mode == "repair":
            return repair(self.model, params, self.stats_a, self.stats_b, alpha, self.batches)
        return params


def interpolation_curve(
    model: nn.Module,
    a: StateDict,
    b: StateDict,
    alphas: Sequence[float],
    splits: Mapping[str, tuple[Tensor, Tensor]],
    *,
    bn_mode: str = "interpolate",
    batches: Sequence[Tensor] = (),
) -> list[CurvePoint]:
    """Loss and error at every alpha on every split: ``len(alphas) * len(splits) * 2`` points."""
    sampler = PathSampler(model, a, b, bn_mode, batches)
    forward = functional_forward(model)
    points = []
    for alpha in alphas:
        params = sampler(float(alpha))
        for split, (x, y) in splits.items():
            metrics = evaluate(forward, params, x, y)
            points.append(CurvePoint(float(alpha), split, "loss", metrics.loss))
            points.append(CurvePoint(float(alpha), split, "error", metrics.error))
    return points
