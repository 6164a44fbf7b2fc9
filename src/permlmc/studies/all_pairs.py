"""Barriers between every pair of many networks, before and after a permutation search, and the indirect
barrier (paper App. E.3, Fig. 18).

The indirect barrier between A and C is ``min_{B != A, C} max(B(A, B), B(B, C))``: small when some third
network is barrier-free with both, i.e. A and C are joined by a two-segment path through B.

All pairs share networks, so their barriers are not independent draws. The paper's i.i.d. variant divides the
networks at random into two sets and pairs one network of each; :func:`independent_pairs` draws such a split and
a matching between its halves, so that every network is in one pair and the pairs' barriers are independent.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from permlmc import seeding
from permlmc.barrier import require_midpoint
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.search import Search, SearchData
from permlmc.studies.groups import average_pairwise_barrier
from permlmc.types import StateDict

__all__ = ["BARRIERS", "all_pair_barriers", "independent_pairs", "indirect_barriers"]

Log = Callable[[str], None]

BARRIERS = ("loss_barrier", "error_barrier", "loss_barrier_mid", "error_barrier_mid")
"""The barrier columns of a row (:func:`~permlmc.studies.groups.average_pairwise_barrier` of the pair, as in the
group table): Eq. 1's sup over alpha and the value at alpha = 1/2 (``*_mid``, the paper's plotted quantity); each has an
``indirect_`` twin."""


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


def independent_pairs(seeds: Sequence[int], seed: int) -> set[tuple[int, int]]:
    """The paper's i.i.d. sampling: ``seeds`` split at random into two halves, the k-th network of one half
    paired with the k-th of the other (both halves in random order), each pair as ``(smaller, larger)``; with an
    odd count one network is left out. Drawn from ``seed`` alone, so every stage and job sees the same pairs."""
    order = np.random.default_rng(seeding.derive(seed, seeding.INDEPENDENT_PAIRS)).permutation(sorted(seeds))
    half = len(order) // 2
    return {(int(min(a, b)), int(max(a, b))) for a, b in zip(order[:half], order[half:2 * half], strict=True)}


def all_pair_barriers(
    spec: PermutationSpec, model: nn.Module, models: Mapping[int, StateDict], data: SearchData | None,
    search: Search, options: Mapping[str, Any], *, alphas: Sequence[float], seed: int,
    curve: tuple[Tensor, Tensor], progress: Log | None = None,
) -> list[dict[str, Any]]:
    """One row per unordered pair ``(a, b)`` of ``models`` (keyed by seed) and per ``stage`` (``before`` = as
    trained, ``after`` = B permuted by ``search``, which reads ``data``), with the barriers of :data:`BARRIERS` on
    the examples ``curve`` (``model``: the networks' skeleton), their indirect barriers within the stage (three
    networks or more), and ``independent``: whether the pair is one of :func:`independent_pairs`. The pair's
    search uses a generator seeded by ``seed`` and the pair; ``alphas`` must contain 1/2."""
    require_midpoint(alphas)
    x, y = curve
    seeds = sorted(models)
    chosen = independent_pairs(seeds, seed)
    rows: list[dict[str, Any]] = []
    for a, b in itertools.combinations(seeds, 2):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + a * 1_009 + b)
        perm = search(spec, models[a], models[b], data=data, generator=generator, **options)
        aligned = apply_permutation(spec, perm, models[b])
        for stage, other in (("before", models[b]), ("after", aligned)):
            values = average_pairwise_barrier(model, [models[a], other], x, y, alphas=alphas)  # the pair's own
            rows.append({"a": a, "b": b, "stage": stage, "independent": (a, b) in chosen,
                         **{column: values[column] for column in BARRIERS}})
        if progress is not None:
            progress(f"pair {a}-{b}: loss barrier {rows[-2]['loss_barrier']:.4f} -> {rows[-1]['loss_barrier']:.4f}")
    if len(seeds) >= 3:
        _add_indirect(rows, seeds)
    return rows


def _add_indirect(rows: list[dict[str, Any]], seeds: Sequence[int]) -> None:
    index = {s: i for i, s in enumerate(seeds)}
    for stage in ("before", "after"):
        part = [row for row in rows if row["stage"] == stage]
        for column in BARRIERS:
            matrix = np.zeros((len(seeds), len(seeds)))
            for row in part:
                matrix[index[row["a"]], index[row["b"]]] = matrix[index[row["b"]], index[row["a"]]] = row[column]
            indirect = indirect_barriers(matrix)
            for row in part:
                row[f"indirect_{column}"] = float(indirect[index[row["a"]], index[row["b"]]])
