"""Connectivity along training (Frankle et al., ICML 2020): the barrier between two networks (two children spawned
from one parent, or two seeds at one epoch) as trained and after weight matching, measured as a pair job measures
a pair (:func:`~permlmc.interpolation.barriers.pair_barriers`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from permlmc import seeding
from permlmc.device import to_device
from permlmc.interpolation.barriers import pair_barriers
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.permutation import apply_permutation
from permlmc.search import get_search
from permlmc.types import StateDict

METHODS = ("none", "weight_matching")
"""The pair as trained, and B after weight matching towards A."""


def before_and_after_matching(
    arch: Architecture, a: StateDict, b: StateDict, splits: Mapping[str, tuple[Tensor, Tensor]],
    alphas: Sequence[float], seed: int, device: torch.device,
) -> list[dict[str, Any]]:
    """Rows ``{method, split, metric, barrier, barrier_mid}`` of ``a`` and ``b`` for each of :data:`METHODS`; the
    matching draws from the search stream of ``seed``."""
    spec = permutation_spec(arch)
    model = build_model(arch).to(device)
    a, b = to_device(a, device), to_device(b, device)
    rows: list[dict[str, Any]] = []
    for method in METHODS:
        found = get_search(method)(spec, a, b, generator=seeding.generator(seed, seeding.SEARCH))
        other = b if method == "none" else apply_permutation(spec, found, b)
        barriers = pair_barriers(model, a, other, alphas, splits).barriers
        rows.extend({"method": method, "split": split, "metric": metric, "barrier": value["sup"],
                     "barrier_mid": value["mid"]} for (split, metric), value in barriers.items())
    return rows
