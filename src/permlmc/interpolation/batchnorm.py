"""BatchNorm along the interpolation path (bn modes ``reset`` and ``repair``).

Interpolating the running statistics of two networks (mode ``interpolate``, the paper's behaviour) does not
give the statistics of the interpolated network: its activations shrink in variance (Jordan et al. 2022,
"REPAIR"), and the midpoint can fall to chance accuracy — a failure of the statistics, not a loss barrier.

- ``reset`` recomputes every BatchNorm layer's running mean and variance on training batches, as the
  interpolated network itself produces them.
- ``repair`` (REPAIR for BatchNorm networks) rescales each channel's BatchNorm output so that its mean and
  standard deviation equal the interpolation of the endpoints' statistics at that channel,
  ``mu = (1 - alpha) mu_A + alpha mu_B`` and ``sigma = (1 - alpha) sigma_A + alpha sigma_B``.

Both work on any model through its BatchNorm modules; no architecture-specific code. ``repair`` is
:func:`repair_targets` followed by the reset. The reset has a stacked variant that treats K networks (state-dict
entries with a leading axis of size K; see :mod:`permlmc.evaluation`) in one vectorised pass per batch and gives, up
to rounding, what the single-network function gives for each of them; the targets take a column of K alphas.
Everything runs on the device of the parameters and batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from permlmc.types import StateDict

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _BN)]


def _snapshot(model: nn.Module) -> StateDict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def reset_statistics(model: nn.Module, params: StateDict, batches: Sequence[Tensor]) -> StateDict:
    """``params`` with every BatchNorm's running statistics re-estimated on ``batches`` (equal-weight average)."""
    # the module takes over copies of the tensors, on their device: the caller's stay untouched
    model.load_state_dict({key: value.detach().clone() for key, value in params.items()}, assign=True)
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
    model.eval()
    layers = batchnorm_layers(model)
    moments = {name: _ChannelMoments() for name, _ in layers}
    handles = [layer.register_forward_hook(moments[name]) for name, layer in layers]
    try:
        for x in batches:
            functional_call(model, params, (x,))
    finally:
        for handle in handles:
            handle.remove()
    stats = {}
    for name, moment in moments.items():
        mean, var = moment.moments()
        stats[name] = (mean, var.sqrt())
    return stats


@torch.no_grad()
def repair_targets(
    model: nn.Module, params: StateDict, stats_a: dict[str, tuple[Tensor, Tensor]],
    stats_b: dict[str, tuple[Tensor, Tensor]], alpha: float | Tensor, eps: float = 1e-8,
) -> StateDict:
    """``params`` with each BatchNorm channel set to output the endpoint statistics interpolated at ``alpha`` (a
    float, or a (K, 1) column for K stacked networks): REPAIR is these targets, then the running statistics reset.

    Once a BatchNorm layer's running statistics are those of its own input, the channel outputs
    ``weight * z + bias`` with ``z`` standardised: mean ``bias``, std ``|weight|``. So the targets are set first
    (``weight <- sign(weight) sigma``, keeping each channel's sign; ``bias <- mu``) and the statistics are then
    re-estimated (:func:`reset_statistics`, :func:`reset_statistics_stacked`) with every layer already in its final
    form: one pass in all instead of one per layer.
    """
    if isinstance(alpha, Tensor) and alpha.dim() != 2:
        raise ValueError(f"alpha of K stacked networks is a (K, 1) column, got shape {tuple(alpha.shape)}")
    targeted = dict(params)
    for name, _ in batchnorm_layers(model):
        (mean_a, std_a), (mean_b, std_b) = stats_a[name], stats_b[name]
        position = alpha.to(mean_a) if isinstance(alpha, Tensor) else alpha
        weight, target_std = params[f"{name}.weight"], torch.lerp(std_a, std_b, position)
        # a channel whose weight vanished outputs a constant: only its level can be repaired
        targeted[f"{name}.weight"] = torch.where(weight.abs() > eps, torch.sign(weight) * target_std, weight)
        targeted[f"{name}.bias"] = torch.lerp(mean_a, mean_b, position).to(weight.dtype)
    return targeted


def _channel_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and unbiased variance of ``x`` of shape (N, C, ...): what a BatchNorm in train mode
    folds into its running statistics."""
    flat = x.detach().transpose(0, 1).flatten(1)  # (C, N * spatial)
    return flat.mean(1), flat.var(1)


@torch.no_grad()
def reset_statistics_stacked(model: nn.Module, stacked: StateDict, batches: Sequence[Tensor]) -> StateDict:
    """:func:`reset_statistics` of the K networks in ``stacked`` at once.

    Every BatchNorm normalises with the batch moments of its own network (train mode without running-statistics
    tracking, vectorised over K) while a pre-hook reads its input's per-channel moments; the running statistics
    are their equal-weight averages over the batches, as the cumulative average (``momentum=None``) of
    :func:`reset_statistics` makes them. Shapes: entries ``(K, *shape)``; one forward of K x len(x) rows per batch.
    """
    layers = batchnorm_layers(model)
    recorded: dict[str, list[tuple[Tensor, Tensor]]] = {}  # this forward's moments, per layer and call
    counts: dict[str, int] = {}  # calls of each layer so far: the reference's num_batches_tracked

    def read(name: str) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
        def hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            recorded.setdefault(name, []).append(_channel_moments(inputs[0]))
            counts[name] = counts.get(name, 0) + 1
        return hook

    def moments(params: StateDict, x: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        recorded.clear()
        functional_call(model, params, (x,))
        return {name: (torch.stack([m for m, _ in seen]).sum(0), torch.stack([v for _, v in seen]).sum(0))
                for name, seen in recorded.items()}  # per layer: ((C,), (C,)) summed over its calls

    tracking = [m.track_running_stats for _, m in layers]
    handles = [m.register_forward_pre_hook(read(name)) for name, m in layers]
    totals: dict[str, tuple[Tensor, Tensor]] = {}
    model.train()
    try:
        for _, m in layers:
            m.track_running_stats = False  # batch moments only; no in-place update of (stacked) buffers
        for x in batches:
            summed = vmap(moments, in_dims=(0, None))(stacked, x)  # per layer: ((K, C), (K, C))
            for name, (mean, var) in summed.items():
                previous = totals.get(name)
                totals[name] = (mean, var) if previous is None else (previous[0] + mean, previous[1] + var)
    finally:
        recorded.clear()
        model.eval()
        for handle in handles:
            handle.remove()
        for (_, m), track in zip(layers, tracking, strict=True):
            m.track_running_stats = track
    return _with_statistics(stacked, [name for name, _ in layers], totals, counts)


def _with_statistics(
    stacked: StateDict, names: Sequence[str], totals: dict[str, tuple[Tensor, Tensor]], counts: dict[str, int]
) -> StateDict:
    """``stacked`` with the running statistics of layers ``names`` set to the averages ``totals / counts``."""
    out = dict(stacked)
    for name in names:
        mean_key, var_key, count_key = (f"{name}.{b}" for b in ("running_mean", "running_var", "num_batches_tracked"))
        if mean_key not in stacked:  # a BatchNorm that tracks no statistics
            continue
        if name in totals:
            out[mean_key] = (totals[name][0] / counts[name]).to(stacked[mean_key].dtype)
            out[var_key] = (totals[name][1] / counts[name]).to(stacked[var_key].dtype)
        else:  # a layer the batches never reached keeps reset statistics, as after reset_running_stats
            out[mean_key], out[var_key] = torch.zeros_like(stacked[mean_key]), torch.ones_like(stacked[var_key])
        if count_key in stacked:
            out[count_key] = torch.full_like(stacked[count_key], counts.get(name, 0))
    return out
