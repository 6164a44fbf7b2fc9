"""Activation matching (Ainsworth et al. 2023, "Git Re-Basin", §3.1; as in REPAIR, Jordan et al. 2023).

For each permutation name ``P``, with ``a_i`` and ``b_j`` the post-activation values of unit ``i`` of A and unit
``j`` of B over the samples of a fixed training subset (:mod:`permlmc.search.features`), the Pearson correlation

    C[i, j] = (E[a_i b_j] - E[a_i] E[b_j]) / (std(a_i) std(b_j))

is computed for every pair, and one linear assignment ``pi_P = argmax_pi sum_i C[i, pi(i)]`` is solved. Since the
features of B's units do not depend on how other layers of B are permuted, each name is matched independently
and once; the result puts B's unit ``pi_P(i)`` at position ``i``. The members of a heads group (attention) are
matched together: one head order, each member's order within every head
(:func:`~permlmc.search.assignment.best_head_assignment` on their correlations).
"""

from __future__ import annotations

from typing import Any

import torch

from permlmc.permutation import PermutationSpec
from permlmc.search.assignment import best_values
from permlmc.search.base import Progress, SearchData
from permlmc.search.features import BATCH, moments
from permlmc.types import Permutation, StateDict


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    batch_size: int = BATCH,
    **options: Any,
) -> Permutation:
    """Match B's units to A's by activation correlation on ``data.x`` (module doc); ``batch_size`` examples per
    forward pass. ``generator`` is unused: the method is deterministic."""
    if options:
        raise TypeError(f"activation_matching got unknown options {sorted(options)}")
    if data is None or data.features is None:
        raise ValueError("activation_matching needs SearchData with features (permlmc.search.features.unit_features)")
    stats = moments(data.features, params_a, params_b, data.x, batch_size)
    missing = sorted(set(spec.names) - set(stats))
    if missing:
        raise ValueError(f"the features give no activations for permutations {missing}")
    perm: Permutation = {}
    for first in spec.names:
        if first in perm:
            continue  # matched with its heads group
        members = spec.moved_with(first)
        corrs = [stats[name].correlation() for name in members]  # (n, n) each
        found = best_values(spec, members, [corr.cpu().numpy() for corr in corrs])
        for name, corr, cols in zip(members, corrs, found, strict=True):
            perm[name] = torch.as_tensor(cols, dtype=torch.int64)
            if progress is not None:
                matched = corr[torch.arange(len(cols)), perm[name].to(corr.device)]
                progress({"event": "match", "name": name, "units": len(cols), "samples": stats[name].count,
                          "mean_correlation": float(matched.mean())})
    return {name: perm[name] for name in spec.names}
