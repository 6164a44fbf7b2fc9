"""Linear interpolation between two networks and the loss/error curve along the path.

The path is ``theta(alpha) = (1 - alpha) * theta_A + alpha * theta_B`` (alpha = 0 is A, alpha = 1 is B; the
paper writes the same path as ``alpha theta_1 + (1 - alpha) theta_2``). Integer buffers such as BatchNorm's
``num_batches_tracked`` are taken from A.

``bn_mode`` records how BatchNorm statistics are treated along the path: ``interpolate`` (the paper's
behaviour) interpolates every floating-point entry, running statistics included; ``reset`` and ``repair``
(see :mod:`permlmc.interpolation.batchnorm`) correct the statistics of each interpolated network. Networks without
BatchNorm only have ``interpolate``.

A curve is computed either alpha by alpha (``stacked=False``, the reference) or stacked: the networks at a group
of alphas stacked along a leading axis and evaluated together, one vectorised forward per data chunk (and, for
``reset``/``repair``, one per statistics batch), with the same results up to float rounding. Either way everything
stays on the device of the given tensors and only the finished curve is copied to the host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from permlmc.barrier import BN_MODES
from permlmc.evaluation import evaluate, evaluate_stacked, forward_stacked, functional_forward, logits_of
from permlmc.interpolation.batchnorm import (
    batchnorm_layers,
    output_statistics,
    repair_targets,
    reset_statistics,
    reset_statistics_stacked,
)
from permlmc.interpolation.input_layer import curve_metrics, curve_metrics_stacked, linear_input_layer, probe
from permlmc.temperature_scaling import temperature_scaled_losses
from permlmc.types import StateDict

MAX_BATCH_BYTES = 2**30
"""Default bound (bytes) on the stacked parameters of one group of alphas in a stacked curve."""
CPU_CHUNK_BYTES = 4 * 2**20
"""On the CPU, bound (bytes) on the widest activation of one forward's rows: convolutional layers on thousands of
rows spill the cache (``bench/curve_speed.py``; figures in ``docs/benchmarks.md``, Interpolation curves)."""


def cpu_rows(model: nn.Module, example: Tensor, batch_size: int) -> int:
    """Rows per forward on the CPU: at most ``batch_size``, and few enough that the widest activation of
    ``model`` (measured on one ``example``) stays within :data:`CPU_CHUNK_BYTES`; at least 64."""
    widest = [0]

    def record(module: nn.Module, args: object, out: object) -> None:
        if isinstance(out, Tensor):
            widest[0] = max(widest[0], out[0].numel() * out.element_size())

    probe(model, example, [m.register_forward_hook(record) for m in model.modules() if not list(m.children())])
    return max(64, min(batch_size, CPU_CHUNK_BYTES // max(widest[0], 1)))


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


def interpolate_stacked(a: StateDict, b: StateDict, alphas: Sequence[float]) -> StateDict:
    """:func:`interpolate` at K alphas at once: entries of shape ``(K, *shape)`` (non-floating ones repeated)."""
    k = len(alphas)
    weights: dict[tuple[torch.device, torch.dtype], Tensor] = {}  # the alphas, copied once per device and dtype
    out = {}
    for key, value in a.items():
        if value.is_floating_point():
            where = (value.device, value.dtype)
            if where not in weights:
                weights[where] = torch.tensor([float(alpha) for alpha in alphas], dtype=value.dtype).to(value.device)
            weight = weights[where].view(k, *[1] * value.dim())  # (K, 1, ...)
            out[key] = torch.lerp(value.unsqueeze(0), b[key].unsqueeze(0), weight)
        else:
            out[key] = value.unsqueeze(0).expand(k, *value.shape)
    return out


def state_bytes(state: StateDict) -> int:
    """Memory of one copy of ``state`` (bytes)."""
    return sum(value.numel() * value.element_size() for value in state.values())


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
        if self.bn_mode == "repair":
            params = repair_targets(self.model, params, self.stats_a, self.stats_b, alpha)
        if self.bn_mode in ("reset", "repair"):  # REPAIR: its targets, then the statistics of the network as it is
            return reset_statistics(self.model, params, self.batches)
        return params

    def stacked(self, alphas: Sequence[float]) -> StateDict:
        """The networks at ``alphas`` stacked along a leading axis: ``self(alpha)`` for each, up to rounding."""
        params = interpolate_stacked(self.a, self.b, alphas)
        if self.bn_mode == "repair":
            column = torch.tensor([float(alpha) for alpha in alphas])[:, None]
            params = repair_targets(self.model, params, self.stats_a, self.stats_b, column)
        if self.bn_mode in ("reset", "repair"):
            return reset_statistics_stacked(self.model, params, self.batches)
        return params

    def group_size(self, count: int, max_batch_bytes: int, batch_size: int) -> int:
        """How many of ``count`` alphas one stacked group holds: their parameters within ``max_batch_bytes``
        and, when statistics are re-estimated, K x (statistics batch) within ``batch_size`` rows."""
        size = min(count, max_batch_bytes // max(state_bytes(self.a), 1))
        if self.bn_mode != "interpolate":
            size = min(size, batch_size // max(len(x) for x in self.batches))
        return max(size, 1)


def interpolation_curve(
    model: nn.Module,
    a: StateDict,
    b: StateDict,
    alphas: Sequence[float],
    splits: Mapping[str, tuple[Tensor, Tensor]],
    *,
    bn_mode: str = "interpolate",
    batches: Sequence[Tensor] = (),
    stacked: bool = False,
    batch_size: int = 4096,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    shortcut: bool = True,
    temperature_split: str | None = None,
) -> list[CurvePoint]:
    """Loss and error at every alpha on every split: ``len(alphas) * len(splits) * 2`` points, alpha-major; with
    ``temperature_split`` (a split's name), also ``loss_temperature_scaled`` at every alpha on every split, the
    cross-entropy at the softmax temperature fitted for that network on split ``temperature_split``
    (:mod:`permlmc.temperature_scaling`), appended.

    ``stacked`` stacks groups of alphas (same values up to rounding). It pays off only where per-forward overhead
    dominates (small networks on a GPU); wide conv nets are slower so, grouped convolutions being slower than dense
    ones, and on the CPU it is at best even (``bench/curve_speed.py``; figures in ``docs/benchmarks.md``). Hence
    alpha by alpha by default. Either way, ``shortcut`` computes a linear input layer (MLPs) for the endpoints only
    and mixes its outputs (:mod:`permlmc.interpolation.input_layer`; same values up to rounding, several times faster).
    ``batch_size`` bounds the rows of one forward (examples, times networks when stacked; on the CPU also
    :func:`cpu_rows`); ``max_batch_bytes`` bounds the stacked parameters of one group of alphas (stacked only).
    Parameters, splits and batches must share a device, where the whole computation then runs.
    """
    sampler = PathSampler(model, a, b, bn_mode, batches)
    example = next(iter(splits.values()))[0] if splits else None
    if example is not None and example.device.type == "cpu" and len(example):
        batch_size = cpu_rows(model, example, batch_size)
    scaled = (_temperature_scaled_points(sampler, alphas, splits, temperature_split, batch_size)
              if temperature_split else [])
    if not stacked:
        return _curve_per_alpha(sampler, alphas, splits, batch_size, shortcut) + scaled
    forward = forward_stacked(model)
    layer = None
    if shortcut and bn_mode == "interpolate" and example is not None:
        layer = linear_input_layer(model, example)
    group = sampler.group_size(len(alphas), max_batch_bytes, batch_size)
    results: dict[str, list[tuple[Tensor, Tensor]]] = {split: [] for split in splits}
    for start in range(0, len(alphas), group):
        some = alphas[start : start + group]
        params = sampler.stacked(some)
        for split, (x, y) in splits.items():
            results[split].append(
                evaluate_stacked(forward, params, x, y, batch_size) if layer is None
                else curve_metrics_stacked(model, layer, a, b, params, some, x, y, batch_size))
    values = {  # one host copy per split and metric: (len(alphas),) lists
        split: tuple(torch.cat([chunk[i] for chunk in chunks]).tolist() for i in (0, 1))
        for split, chunks in results.items()
    }
    points = []
    for i, alpha in enumerate(alphas):
        for split in splits:
            points.append(CurvePoint(float(alpha), split, "loss", values[split][0][i]))
            points.append(CurvePoint(float(alpha), split, "error", values[split][1][i]))
    return points + scaled


def _temperature_scaled_points(
    sampler: PathSampler, alphas: Sequence[float], splits: Mapping[str, tuple[Tensor, Tensor]], fit: str,
    batch_size: int,
) -> list[CurvePoint]:
    """``loss_temperature_scaled`` of the network at each alpha on every split: one temperature per network, fitted on
    split ``fit``."""
    forward = functional_forward(sampler.model)
    points: list[CurvePoint] = []
    for alpha in alphas:
        params = sampler(float(alpha))
        logits = {split: (logits_of(forward, params, x, batch_size), y) for split, (x, y) in splits.items()}
        _, losses = temperature_scaled_losses(logits, fit)
        points.extend(CurvePoint(float(alpha), split, "loss_temperature_scaled", losses[split]) for split in splits)
    return points


def _curve_per_alpha(
    sampler: PathSampler, alphas: Sequence[float], splits: Mapping[str, tuple[Tensor, Tensor]], batch_size: int,
    shortcut: bool = True,
) -> list[CurvePoint]:
    """One network at a time, one evaluation per alpha and split; for plain interpolation of a network whose input layer
    is linear (MLPs), that layer is computed for the endpoints only (:mod:`permlmc.interpolation.input_layer`)."""
    layer = None
    if shortcut and sampler.bn_mode == "interpolate" and splits:
        layer = linear_input_layer(sampler.model, next(iter(splits.values()))[0])
    if layer is not None:
        found = {split: curve_metrics(sampler.model, layer, sampler.a, sampler.b, alphas, x, y, batch_size)
                 for split, (x, y) in splits.items()}
        return [CurvePoint(float(alpha), split, metric, getattr(found[split][i], metric))
                for i, alpha in enumerate(alphas) for split in splits for metric in ("loss", "error")]
    forward = functional_forward(sampler.model)
    points = []
    for alpha in alphas:
        params = sampler(float(alpha))
        for split, (x, y) in splits.items():
            metrics = evaluate(forward, params, x, y, batch_size)
            points.append(CurvePoint(float(alpha), split, "loss", metrics.loss))
            points.append(CurvePoint(float(alpha), split, "error", metrics.error))
    return points
