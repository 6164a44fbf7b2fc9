"""Layer-wise interpolation (Adilova et al., ICLR 2024, "Layer-wise linear mode connectivity").

Instead of moving the whole network from A to B, move one group of parameters at a time: the network at ``alpha``
for group ``g`` has the entries of ``g`` at ``(1 - alpha) A + alpha B`` and every other entry at A. The barrier of
that curve (Eq. 1, sup over alpha; and at alpha = 1/2) says how much of the full barrier one layer carries on its
own (``moved="alone"``). Adilova et al. find single layers nearly free of barriers and locate the barrier by moving
the first k groups together (``moved="up_to"``, k = 1..L; the last is the whole network's curve). B is taken after
the pair's permutation, so the curves compare what a search changed layer by layer.

Groups are derived from the state dict's names: a group is every entry whose module path starts with the same
``depth`` components (``layers.0.weight`` and ``layers.0.bias`` at depth 2; a ResNet block ``stages.0.1`` at depth
3), or, with ``depth=None``, one group per module holding parameters (each Linear, convolution, normalisation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from permlmc.barrier import curve_barriers
from permlmc.evaluation import evaluate, functional_forward
from permlmc.types import StateDict


@dataclass(frozen=True)
class LayerPoint:
    layer: str
    moved: str
    """``alone`` (this group only) or ``up_to`` (this group and every group before it)."""
    alpha: float
    split: str
    metric: str
    value: float


def layer_groups(params: StateDict, depth: int | None = None) -> dict[str, list[str]]:
    """Group name -> its state-dict keys, in the order of ``params`` (module doc; a model's own ``state_dict()``
    lists its layers input to output, a checkpoint file by name). Entries without a dot are their own group; every
    key is in exactly one group."""
    groups: dict[str, list[str]] = {}
    for key in params:
        path = key.split(".")[:-1]  # the module's path, without the entry's own name
        name = ".".join(path if depth is None else path[:depth]) or key
        groups.setdefault(name, []).append(key)
    return groups


def with_group(a: StateDict, b: StateDict, keys: Sequence[str], alpha: float) -> StateDict:
    """``a`` with the floating entries ``keys`` at ``(1 - alpha) a + alpha b`` (the others of ``a`` unchanged)."""
    moved = set(keys)
    return {k: torch.lerp(v, b[k], alpha) if k in moved and v.is_floating_point() else v for k, v in a.items()}


@torch.no_grad()
def layerwise_curves(
    model: nn.Module, a: StateDict, b: StateDict, groups: Mapping[str, Sequence[str]], alphas: Sequence[float],
    splits: Mapping[str, tuple[Tensor, Tensor]], batch_size: int = 4096,
) -> list[LayerPoint]:
    """Loss and error of every group's curves (``alone`` and ``up_to``) at every alpha on every split (BatchNorm
    statistics, where any, are entries of their normalisation layer's group and move with it)."""
    forward = functional_forward(model)
    points = []
    before: list[str] = []
    for layer, keys in groups.items():
        before = [*before, *keys]
        for moved, moving in (("alone", keys), ("up_to", before)):
            for alpha in alphas:
                params = with_group(a, b, moving, float(alpha))
                for split, (x, y) in splits.items():
                    metrics = evaluate(forward, params, x, y, batch_size)
                    points.append(LayerPoint(layer, moved, float(alpha), split, "loss", metrics.loss))
                    points.append(LayerPoint(layer, moved, float(alpha), split, "error", metrics.error))
    return points


def layerwise_barriers(points: Sequence[LayerPoint]) -> list[dict[str, object]]:
    """One row per (layer, moved, split, metric): the curve's barrier (sup over alpha) and its value at alpha = 1/2."""
    found = curve_barriers(((p.layer, p.moved, p.split, p.metric), p.alpha, p.value) for p in points)
    return [{"layer": layer, "moved": moved, "split": split, "metric": metric, "barrier": b["sup"],
             "barrier_mid": b["mid"]} for (layer, moved, split, metric), b in found.items()]
