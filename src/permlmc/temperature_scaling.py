"""Temperature scaling of a classifier's logits (Ito et al. 2025, arXiv 2510.08023).

Part of a loss barrier can be miscalibration of the interpolated network rather than lost accuracy: the midpoint of
two networks is often under-confident, and its cross-entropy falls once its logits are rescaled. The
temperature-scaled loss of logits ``z`` is ``min_T CE(z / T)`` with one softmax temperature ``T`` fitted on a fitting
set (the training subset of a curve); applied to another split, it is that split's cross-entropy at the fitted ``T``.
Rescaling ``z`` by a constant leaves the temperature-scaled loss unchanged (the fitted ``T`` absorbs it), and it never
exceeds the raw loss.

The fit is one-dimensional in ``log T``: the cross-entropy is convex in ``1 / T`` (a log-sum-exp of a linear
function minus a linear term), hence unimodal in ``log T``, and a golden-section search over
:data:`LOG_TEMPERATURES` finds its minimum to :data:`TOLERANCE`. All sums run in float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_TEMPERATURES = (math.log(1e-3), math.log(1e3))
"""The bracket of ``log T`` searched: temperatures from 1e-3 to 1e3."""
TOLERANCE = 1e-6
"""Width of the final ``log T`` bracket."""
_GOLDEN = (math.sqrt(5) - 1) / 2


def scaled_loss(logits: Tensor, y: Tensor, temperature: float) -> float:
    """Mean cross-entropy (nats) of ``logits / temperature`` for logits (N, classes), in float64."""
    z = logits.double() / temperature
    picked = z.gather(1, y[:, None]).squeeze(1)
    return float((torch.logsumexp(z, dim=1) - picked).mean()) if len(y) else 0.0


def fit_temperature(logits: Tensor, y: Tensor) -> float:
    """The temperature minimising :func:`scaled_loss` of ``logits`` (N, classes) on labels ``y``, within
    :data:`LOG_TEMPERATURES`."""
    z = logits.double()

    def loss(log_t: float) -> float:
        return scaled_loss(z, y, math.exp(log_t))

    low, high = LOG_TEMPERATURES
    left, right = high - _GOLDEN * (high - low), low + _GOLDEN * (high - low)
    f_left, f_right = loss(left), loss(right)
    while high - low > TOLERANCE:
        if f_left <= f_right:
            high, right, f_right = right, left, f_left
            left = high - _GOLDEN * (high - low)
            f_left = loss(left)
        else:
            low, left, f_left = left, right, f_right
            right = low + _GOLDEN * (high - low)
            f_right = loss(right)
    return math.exp((low + high) / 2)


def temperature_scaled_losses(logits: dict[str, tuple[Tensor, Tensor]], fit: str) -> tuple[float, dict[str, float]]:
    """The temperature fitted on split ``fit`` of ``logits`` (split -> (logits, labels)) and every split's
    cross-entropy at that temperature."""
    if fit not in logits:
        raise ValueError(f"the split {fit!r} temperatures are fitted on is not among the splits {sorted(logits)}")
    temperature = fit_temperature(*logits[fit])
    return temperature, {split: scaled_loss(z, y, temperature) for split, (z, y) in logits.items()}
