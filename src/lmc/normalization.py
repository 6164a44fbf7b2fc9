"""BatchNorm along the interpolation path (bn modes ``reset`` and ``repair``).

Interpolating the running statistics of two networks (mode ``interpolate``, the paper's behaviour) does not
give the statistics of the interpolated network: its activations shrink in variance (Jordan et al. 2022,
"REPAIR"), and the midpoint can fall to chance accuracy — a failure of the statistics, not a loss barrier.

- ``reset`` recomputes every BatchNorm layer's running mean and variance on training batches, as the
  interpolated network itself produces them.
- ``repair`` (REPAIR for BatchNorm networks) rescales each channel's BatchNorm output so that its mean and
  standard deviation equal the interpolation of the endpoints' statistics at that channel,
  ``mu = (1 - alpha) mu_A + alpha mu_B`` and ``sigma = (1 - alpha) sigma_A + alpha sigma_B``.

Both work on any model through its BatchNorm modules; no architecture-specific code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lmc.types import StateDict

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _BN)]


def _snapshot(model: nn.Module) -> StateDict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def reset_statistics(model: nn.Module, params: StateDict, batches: Sequence[Tensor]) -> StateDict:
    """``params`` with every BatchNorm's running statistics re-estimated on ``batches`` (equal-weight average)."""
    model.load_state_dict(params)
    layers = batchnorm_layers(model)
    momenta = [m.momentum for _, m in layers]
    for _, m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches, not an exponential one
    model.train()
    try:
        for x in batches:
            model(x)
    finally:
        model.eval()
        for (_, m), momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
    return _snapshot(model)


class _ChannelMoments:
    """Running per-channel mean and variance of a layer's ``(N, C, ...)`` outputs, read in a forward hook.

    Moments are accumulated inside the hook because the network may modify the output in place afterwards
    (in-place ReLU, residual addition).
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: Tensor | None = None
        self.squares: Tensor | None = None

    def __call__(self, _module: nn.Module, _inputs: object, output: Tensor) -> None:
        flat = output.detach().transpose(0, 1).reshape(output.shape[1], -1).double()  # (C, N * spatial)
        total, squares = flat.sum(1), (flat * flat).sum(1)
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += flat.shape[1]

    def moments(self) -> tuple[Tensor, Tensor]:
        assert self.total is not None and self.squares is not None, "the layer saw no data"
        mean = self.total / self.count
        var = (self.squares / self.count - mean * mean).clamp_min(0)
        return mean.float(), var.float()


@torch.no_grad()
def output_statistics(
    model: nn.Module, params: StateDict, batches: Sequence[Tensor]
) -> dict[str, tuple[Tensor, Tensor]]:
    """Per-channel (mean, std) of every BatchNorm output of ``params`` in eval mode over ``batches`` (one pass)."""
    model.load_state_dict(params)
    model.eval()
    layers = batchnorm_layers(model)
    moments = {name: _ChannelMoments() for name, _ in layers}
    handles = [layer.register_forward_hook(moments[name]) for name, layer in layers]
    try:
        for x in batches:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    stats = {}
    for name, moment in moments.items():
        mean, var = moment.moments()
        stats[name] = (mean, var.sqrt())
    return stats


@torch.no_grad()
def repair(
    model: nn.Module, params: StateDict, stats_a: dict[str, tuple[Tensor, Tensor]],
    stats_b: dict[str, tuple[Tensor, Tensor]], alpha: float, batches: Sequence[Tensor], eps: float = 1e-8,
) -> StateDict:
    """``params`` with each BatchNorm channel's output rescaled to the interpolated endpoint statistics.

    Once a BatchNorm layer's running statistics are those of its own input, the channel outputs
    ``weight * z + bias`` with ``z`` standardised: mean ``bias``, std ``|weight|``. So the targets are set first
    (``weight <- sign(weight) sigma``, keeping each channel's sign; ``bias <- mu``) and the statistics are then
    re-estimated with every layer already in its final form: one pass in all instead of one per layer.
    """
    targeted = dict(params)
    for name, _ in batchnorm_layers(model):
        target_mean = torch.lerp(stats_a[name][0], stats_b[name][0], alpha)
        target_std = torch.lerp(stats_a[name][1], stats_b[name][1], alpha)
        weight = params[f"{name}.weight"]
        # a channel whose weight vanished outputs a constant: only its level can be repaired
        targeted[f"{name}.weight"] = torch.where(weight.abs() > eps, torch.sign(weight) * target_std, weight)
        targeted[f"{name}.bias"] = target_mean.to(weight.dtype)
    return reset_statistics(model, targeted, batches)
