"""How far two float computations of one network may differ by rounding alone: tolerances from the computation.

Two computations of the same function that differ only in the order of their sums (dense against grouped or
vmapped kernels, permuted units, one stacked forward against K single ones, or other SIMD widths and BLAS/oneDNN
kernels on another CPU) do not agree bitwise. A sum of n terms rounded at unit ``eps`` is off by about
sqrt(n) * eps times its terms' magnitude (the roundings add up as a random walk); every weight layer adds such an
error relative to the magnitude of the activations (BatchNorm and the head keep it), and the errors of the L layers
add up. Two computations therefore differ by at most about

    tau * magnitude,   tau = L * sqrt(n) * eps      L: weight layers, n: terms of the longest sum

where ``magnitude`` is the largest absolute value of the compared quantity (a rounding error is a number of ulps of
the largest terms, not of an entry that happens to be near zero). There is no CPU-specific constant in it. A real
bug (one network's BatchNorm statistics used for another, a permutation not applied to a tensor, another alpha's
network) moves the values by a sizeable fraction of their magnitude: tens to thousands of times the bound in
float32, millions of times in float64 (eps 2^-52 instead of 2^-23), where a test can run in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


def weight_layers(model: nn.Module) -> int:
    """L: the network's convolutions and linear layers (each rounds its products and sums once more)."""
    return sum(isinstance(m, WEIGHT_LAYERS) for m in model.modules())


def longest_sum(model: nn.Module, input_shape: Sequence[int], rows: int, moment_rows: int = 0) -> int:
    """n: terms of the longest sum in the computation: a layer's fan-in (inputs per output of a linear layer;
    in-channels x kernel positions of a convolution), a mean over ``rows`` examples (a loss, an error), and for
    BatchNorm in train mode (``reset``, ``repair``) its moments over ``moment_rows`` x the positions of a feature
    map, at most those of the input (``input_shape`` = (C, H, W))."""
    fan_in = max(m.weight[0].numel() for m in model.modules() if isinstance(m, WEIGHT_LAYERS))
    return max(fan_in, rows, moment_rows * math.prod(input_shape[1:]))


def rounding_tolerance(
    model: nn.Module, input_shape: Sequence[int], rows: int, moment_rows: int = 0, dtype: torch.dtype = torch.float32
) -> float:
    """tau = L * sqrt(n) * eps (module docstring): the relative difference that rounding alone can explain."""
    n = longest_sum(model, input_shape, rows, moment_rows)
    return weight_layers(model) * math.sqrt(n) * torch.finfo(dtype).eps


def magnitude(values: Tensor) -> float:
    """The largest absolute value of ``values``: what their rounding errors are relative to."""
    return float(values.detach().abs().max())


def to_float64(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """``params`` with every floating tensor in float64 (integer buffers as they are)."""
    return {k: v.double() if v.is_floating_point() else v for k, v in params.items()}
