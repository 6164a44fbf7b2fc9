"""What every interpolation curve of one network shares, built once per job: the model skeleton, the alphas, the
evaluation subsets and, for networks with BatchNorm, the statistics batches and the modes that apply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from permlmc.data.dataset import Dataset
from permlmc.data.subsets import curve_splits, statistics_batches
from permlmc.interpolation.batchnorm import batchnorm_layers
from permlmc.models import Architecture, build_model

TEMPERATURE_SPLIT = "train"
"""The split a temperature-scaled curve fits its temperatures on (the training subset, as Ito et al. fit them)."""


def alpha_grid(points: int) -> list[float]:
    """``points`` evenly spaced alphas in [0, 1]; an odd count includes the midpoint."""
    if points < 3:
        raise ValueError(f"a curve needs at least 3 alphas (the endpoints and the midpoint), got {points}")
    return [float(v) for v in np.linspace(0.0, 1.0, points)]


@dataclass(frozen=True)
class CurveSetup:
    """The shared inputs of a network's curves. ``modes``: the BatchNorm modes that apply (modes other than
    ``interpolate`` need BatchNorm; the others are listed in ``skipped``)."""

    model: torch.nn.Module
    alphas: Sequence[float]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    modes: list[str]
    skipped: list[str]
    batches: list[torch.Tensor]
    bn_statistics: dict[str, int] | None
    stacked: bool
    temperature_split: str | None = None
    """The split each interpolated network's softmax temperature is fitted on (``loss_temperature_scaled``), or None."""


def curve_setup(
    arch: Architecture, data: Dataset, *, alphas: Sequence[float], train_examples: int | None,
    test_examples: int | None, bn_modes: Sequence[str], bn_batches: int, bn_batch_size: int, stacked: bool,
    device: torch.device, temperature_scaled: bool = False,
) -> CurveSetup:
    model = build_model(arch).to(device)
    splits = curve_splits(data, train_examples, test_examples)
    has_bn = bool(batchnorm_layers(model))
    modes = [m for m in bn_modes if m == "interpolate" or has_bn]
    return CurveSetup(
        model=model, alphas=alphas, splits=splits, modes=modes,
        skipped=[m for m in bn_modes if m not in modes],
        batches=statistics_batches(data, bn_batches, bn_batch_size) if has_bn else [],
        bn_statistics={"batches": bn_batches, "batch_size": bn_batch_size} if has_bn else None, stacked=stacked,
        temperature_split=TEMPERATURE_SPLIT if temperature_scaled else None,
    )
