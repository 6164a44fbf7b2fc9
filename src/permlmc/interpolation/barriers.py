"""The barrier of a pair of networks, one function for every caller (pair jobs, groups, all pairs, along
training): the interpolation curves between them (:func:`~permlmc.interpolation.path.interpolation_curve`) and
each curve's Eq. 1 barriers (:func:`~permlmc.barrier.curve_barriers`: the sup over the alpha grid and the value at
alpha = 1/2), keyed by (split, metric)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from permlmc.barrier import curve_barriers
from permlmc.interpolation.path import CurvePoint, interpolation_curve
from permlmc.types import StateDict


@dataclass(frozen=True)
class PairBarriers:
    points: list[CurvePoint]
    """The curves, as :func:`~permlmc.interpolation.path.interpolation_curve` returns them."""
    barriers: dict[tuple[str, str], dict[str, float]]
    """(split, metric) -> {"sup": Eq. 1 over the alpha grid, "mid": its value at alpha = 1/2}."""

    def columns(self, split: str) -> dict[str, float]:
        """``{metric}_barrier`` (sup) and ``{metric}_barrier_mid`` of every metric on ``split``: the columns of
        the study tables (groups, all pairs)."""
        found = {}
        for (where, metric), values in self.barriers.items():
            if where == split:
                found[f"{metric}_barrier"] = values["sup"]
                found[f"{metric}_barrier_mid"] = values["mid"]
        return found


def pair_barriers(
    model: nn.Module, a: StateDict, b: StateDict, alphas: Sequence[float],
    splits: Mapping[str, tuple[Tensor, Tensor]], *, bn_mode: str = "interpolate", batches: Sequence[Tensor] = (),
    stacked: bool = False, temperature_split: str | None = None,
) -> PairBarriers:
    """The curves between ``a`` and ``b`` (``model``: their skeleton) under ``bn_mode`` (``batches``: the training
    inputs ``reset``/``repair`` estimate statistics on), alpha by alpha or ``stacked``, with ``loss_temperature_scaled``
    when ``temperature_split`` names the split temperatures are fitted on (see
    :func:`~permlmc.interpolation.path.interpolation_curve`); and their barriers. The grid must hold both endpoints
    and alpha = 1/2."""
    points = interpolation_curve(model, a, b, alphas, splits, bn_mode=bn_mode, batches=batches, stacked=stacked,
                                 temperature_split=temperature_split)
    return PairBarriers(points, curve_barriers(((p.split, p.metric), p.alpha, p.value) for p in points))
