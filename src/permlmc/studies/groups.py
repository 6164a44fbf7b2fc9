"""§4.2: n networks of one architecture (one network's trained seeds, or its permuted copies) permuted together by
a group search (:mod:`permlmc.search.group`), and the mean barrier over their pairs before and after, each pair
measured as a pair job measures it (:func:`~permlmc.interpolation.barriers.pair_barriers`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from torch import Tensor, nn

from permlmc import seeding
from permlmc.barrier import require_midpoint
from permlmc.interpolation.barriers import pair_barriers
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.search import SearchData
from permlmc.search.group import GroupSearch
from permlmc.types import StateDict

__all__ = ["average_pairwise_barrier", "group_rows"]

SPLIT = "train"
"""The split a group's barriers are read on (the examples given, those of the pairs' training curves)."""


def average_pairwise_barrier(
    model: nn.Module, params: Sequence[StateDict], x: Tensor, y: Tensor, *, alphas: Sequence[float]
) -> dict[str, Any]:
    """Eq. 1 barriers of every pair ``i < j`` of (already permuted) ``params`` on the examples ``x, y``, with
    BatchNorm statistics interpolated along each path (``bn_mode`` ``interpolate``): ``{"pairs": [{"i", "j",
    "loss_barrier", "error_barrier", "loss_barrier_mid", "error_barrier_mid"}, ...]}`` and the mean of each barrier
    over the pairs (``*_mid``: the value at alpha = 1/2, which ``alphas`` must hold)."""
    require_midpoint(alphas)
    if len(params) < 2:
        raise ValueError(f"a pairwise barrier needs at least 2 models, got {len(params)}")
    pairs = [{"i": i, "j": j, **pair_barriers(model, params[i], params[j], alphas, {SPLIT: (x, y)}).columns(SPLIT)}
             for i, j in combinations(range(len(params)), 2)]
    keys = [key for key in pairs[0] if key not in ("i", "j")]
    return {**{key: sum(row[key] for row in pairs) / len(pairs) for key in keys}, "pairs": pairs}


def group_rows(
    spec: PermutationSpec, params: Sequence[StateDict], search: GroupSearch, *, data: SearchData | None,
    model: nn.Module, curve: tuple[Tensor, Tensor], alphas: Sequence[float], seed: int, options: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Rows ``before`` (as given) and ``after`` (each model permuted by ``search``, which reads ``data`` and draws
    from the search stream of ``seed``): the mean barriers over the group's pairs on the examples ``curve``, and
    the search's wall time."""
    start = time.perf_counter()
    perms = search(spec, params, data=data, generator=seeding.generator(seed, seeding.SEARCH), **options)
    seconds = time.perf_counter() - start
    device = next(iter(params[0].values())).device
    permuted = [apply_permutation(spec, {name: p.to(device) for name, p in perm.items()}, model_params)
                for perm, model_params in zip(perms, params, strict=True)]
    rows = []
    for stage, group in (("before", params), ("after", permuted)):
        report = average_pairwise_barrier(model, group, *curve, alphas=alphas)
        rows.append({"stage": stage, **{k: v for k, v in report.items() if k != "pairs"}, "search_seconds": seconds})
    return rows
