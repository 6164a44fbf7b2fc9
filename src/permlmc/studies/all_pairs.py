"""Barriers between every pair of many networks, before and after a permutation search, and the indirect
barrier (paper App. E.3, Fig. 18).

The indirect barrier between A and C is ``min_{B != A, C} max(B(A, B), B(B, C))``: small when some third
network is barrier-free with both, i.e. A and C are joined by a two-segment path through B.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from permlmc.evaluation import Forward
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.search import Search, SearchData
from permlmc.search.group import average_pairwise_barrier
from permlmc.types import StateDict

Log = Callable[[str], None]


def indirect_barriers(matrix: np.ndarray) -> np.ndarray:
    """``out[a, c] = min_{b != a, c} max(matrix[a, b], matrix[b, c])`` for a symmetric (n, n) matrix, n >= 3;
    the diagonal is 0."""
    n = len(matrix)
    if n < 3:
        raise ValueError(f"the indirect barrier needs at least 3 networks, got {n}")
    through = np.maximum(matrix[:, :, None], matrix[None, :, :])  # (a, b, c): max(M[a, b], M[b, c])
    eye = np.eye(n, dtype=bool)
    through[eye[:, :, None].repeat(n, axis=2)] = np.inf  # b == a
    through[eye[None, :, :].repeat(n, axis=0)] = np.inf  # b == c
    out = through.min(axis=1)
    np.fill_diagonal(out, 0.0)
    return out


def all_pair_barriers(
    spec: PermutationSpec, forward: Forward, models: Mapping[int, StateDict], data: SearchData,
    search: Search, options: Mapping[str, Any], *, alphas: Sequence[float], seed: int,
    progress: Log | None = None,
) -> list[dict[str, Any]]:
    """One row per unordered pair ``(a, b)`` of ``models`` (keyed by seed) and per ``stage`` (``before`` = as
    trained, ``after`` = B permuted by ``search``), with the loss and error barriers on ``data`` and the
    indirect barrier of that stage; the pair's search uses a generator seeded by ``seed`` and the pair."""
    seeds = sorted(models)
    rows: list[dict[str, Any]] = []
    for a, b in itertools.combinations(seeds, 2):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + a * 1_009 + b)
        perm = search(spec, models[a], models[b], data=data, generator=generator, **options)
        aligned = apply_permutation(spec, perm, models[b])
        for stage, other in (("before", models[b]), ("after", aligned)):
            values = average_pairwise_barrier(forward, [models[a], other], data.x, data.y, alphas=alphas)
            rows.append({"a": a, "b": b, "stage": stage, "loss": values["loss_barrier"],
                         "error": values["error_barrier"]})
        if progress is not None:
            progress(f"pair {a}-{b}: loss barrier {rows[-2]['loss']:.4f} -> {rows[-1]['loss']:.4f}")
    index = {s: i for i, s in enumerate(seeds)}
    for stage in ("before", "after"):
        for metric in ("loss", "error"):
            matrix = np.zeros((len(seeds), len(seeds)))
            for row in rows:
                if row["stage"] == stage:
                    matrix[index[row["a"]], index[row["b"]]] = matrix[index[row["b"]], index[row["a"]]] = row[metric]
            if len(seeds) >= 3:
                indirect = indirect_barriers(matrix)
                for row in rows:
                    if row["stage"] == stage:
                        row[f"indirect_{metric}"] = float(indirect[index[row["a"]], index[row["b"]]])
    return rows
