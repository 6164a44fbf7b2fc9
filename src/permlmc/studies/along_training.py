"""Connectivity along training (Frankle et al., ICML 2020): the barrier between two networks (two children spawned
from one parent, or two seeds at one epoch) as trained and after weight matching, measured as a pair job measures
a pair (:func:`~permlmc.interpolation.barriers.pair_barriers`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from permlmc import seeding
from permlmc.device import to_device
from permlmc.interpolation.barriers import pair_barriers
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.search import get_search
from permlmc.types import StateDict

METHODS = ("none", "weight_matching")
"""The pair as trained, and B after weight matching towards A."""


def before_and_after_matching(
    spec: PermutationSpec, model: nn.Module, a: StateDict, b: StateDict, splits: Mapping[str, tuple[Tensor, Tensor]],
    alphas: Sequence[float], seed: int,
) -> list[dict[str, Any]]:
    """Rows ``{method, split, metric, barrier, barrier_mid}`` of ``a`` and ``b`` (``model``: their skeleton, on the
    device of ``splits``) for each of :data:`METHODS`; the matching draws from the search stream of ``seed``."""
    device = next(iter(splits.values()))[0].device
    a, b = to_device(a, device), to_device(b, device)
    rows: list[dict[str, Any]] = []
    for method in METHODS:
        found = get_search(method)(spec, a, b, generator=seeding.generator(seed, seeding.SEARCH))
        barriers = pair_barriers(model, a, apply_permutation(spec, found, b), alphas, splits).barriers
        rows.extend({"method": method, "split": split, "metric": metric, "barrier": value["sup"],
                     "barrier_mid": value["mid"]} for (split, metric), value in barriers.items())
    return rows
