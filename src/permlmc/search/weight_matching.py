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

from permlmc.permutation import RUNNING_STATISTICS, PermutationSpec, identity, permute_tensor, unit_rows
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict


def _similarity(
    spec: PermutationSpec, perm: Permutation, a: StateDict, b: StateDict, name: str, statistics: bool
) -> np.ndarray:
    n = len(perm[name])
    total = torch.zeros((n, n), dtype=torch.float64)
    for stretch in spec.stretches[name]:
        if not statistics and stretch.key.rsplit(".", 1)[-1] in RUNNING_STATISTICS:
            continue
        wa = unit_rows(a[stretch.key], stretch, n).double()  # (n, rest)
        wb = unit_rows(permute_tensor(b[stretch.key], spec.axes[stretch.key], perm, skip=stretch.axis), stretch, n)
        total += wa @ wb.double().T  # (n, n)
    return total.numpy()


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
    a = {k: v.detach().cpu() for k, v in params_a.items()}
    b = {k: v.detach().cpu() for k, v in params_b.items()}
    perm = {name: p.clone() for name, p in start.items()}
    names = spec.names
    for iteration in range(max_iter):
        improved = False
        for index in torch.randperm(len(names), generator=generator).tolist():
            name = names[index]
            sim = _similarity(spec, perm, a, b, name, statistics)
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
