"""Weight matching (Ainsworth et al. 2023, "Git Re-Basin", Alg. 1), generic over a PermutationSpec.

For each permutation ``P`` in turn (random order), with all other permutations fixed, maximise
``sum_{(key, axis) in P} <W_A[key], P W_B[key]>`` — a linear assignment problem on the ``(n, n)`` matrix
``S[i, k] = sum <row i of W_A along axis, row k of W_B along axis>``, rows taken with every *other*
permutation already applied to B. Repeat until no permutation improves.

Option ``statistics``: whether BatchNorm running statistics (``running_mean``, ``running_var``) enter ``S`` beside
the weights (default, they are state-dict entries the permutation moves) or only learned parameters do, as in Git
Re-Basin's weight matching (its permutation specs list parameters alone).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from permlmc.permutation import RUNNING_STATISTICS, PermutationSpec, Stretch, identity, permute_tensor, unit_rows
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict

Rows = list[tuple[Stretch, Tensor]]
"""Stretches of one name with A's entries there, one row per unit."""


def _rows_of_a(spec: PermutationSpec, a: StateDict, sizes: dict[str, int], statistics: bool) -> dict[str, Rows]:
    """Per name, (stretch, A's rows) of every stretch that enters its similarity: fixed for the whole ascent."""
    return {name: [(s, unit_rows(a[s.key], s, sizes[name])) for s in places  # (n, rest)
                   if statistics or s.key.rsplit(".", 1)[-1] not in RUNNING_STATISTICS]
            for name, places in spec.stretches.items()}


def _similarity(spec: PermutationSpec, perm: Permutation, rows_a: Rows, b: StateDict, n: int) -> np.ndarray:
    total = torch.zeros((n, n), dtype=torch.float64)
    for stretch, wa in rows_a:
        wb = unit_rows(permute_tensor(b[stretch.key], spec.axes[stretch.key], perm, skip=stretch.axis), stretch, n)
        total += wa @ wb.T  # (n, n)
    return total.numpy()


def _float64(params: StateDict) -> StateDict:
    return {k: v.detach().cpu().double() if v.is_floating_point() else v.detach().cpu() for k, v in params.items()}


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    max_iter: int = 100,
    statistics: bool = True,
    **options: Any,
) -> Permutation:
    if options:
        raise TypeError(f"weight_matching got unknown options {sorted(options)}")
    b = {k: v.detach().cpu() for k, v in params_b.items()}
    return match(spec, params_a, b, identity(spec, b), generator=generator, max_iter=max_iter, progress=progress,
                 statistics=bool(statistics))


def match(
    spec: PermutationSpec, params_a: StateDict, params_b: StateDict, start: Permutation, *,
    generator: torch.Generator, max_iter: int = 100, progress: Progress | None = None, statistics: bool = True,
) -> Permutation:
    """Coordinate ascent of the module doc from the permutation ``start`` (left as it is): sweeps over the names in
    random order until one sweep improves none, at most ``max_iter`` sweeps."""
    a, b = _float64(params_a), _float64(params_b)  # once, not per similarity (the values are the same)
    perm = {name: p.clone() for name, p in start.items()}
    names = spec.names
    rows_a = _rows_of_a(spec, a, {name: len(p) for name, p in perm.items()}, statistics)
    for iteration in range(max_iter):
        improved = False
        for index in torch.randperm(len(names), generator=generator).tolist():
            name = names[index]
            sim = _similarity(spec, perm, rows_a[name], b, len(perm[name]))
            rows = np.arange(len(sim))
            _, cols = linear_sum_assignment(sim, maximize=True)
            old, new = sim[rows, perm[name].numpy()].sum(), sim[rows, cols].sum()
            if new > old + 1e-12 * max(1.0, abs(old)):
                perm[name] = torch.as_tensor(cols, dtype=torch.int64)
                improved = True
        if progress is not None:
            progress({"iteration": iteration + 1, "improved": improved})
        if not improved:
            break
    return perm
