"""All pairs of many networks (App. E.3): the indirect barrier, the independent pairs of the i.i.d. variant and
the rows of every pair before and after a search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, permutation_spec
from permlmc.search import SearchData, get_search
from permlmc.studies.all_pairs import BARRIERS, all_pair_barriers, independent_pairs, indirect_barriers
from permlmc.training.loop import initialise

ALPHAS = [i / 4 for i in range(5)]


def test_indirect_barrier_is_the_best_two_segment_path() -> None:
    rng = np.random.default_rng(0)
    upper = np.triu(rng.uniform(0, 1, (6, 6)), 1)
    matrix = upper + upper.T
    out = indirect_barriers(matrix)
    for a, c in itertools.permutations(range(6), 2):
        expected = min(max(matrix[a, b], matrix[b, c]) for b in range(6) if b not in (a, c))
        assert out[a, c] == expected
    assert np.all(np.diag(out) == 0)
    with pytest.raises(ValueError, match="at least 3 networks"):
        indirect_barriers(matrix[:2, :2])


@pytest.mark.parametrize("n", [2, 7, 20])
def test_independent_pairs_use_each_network_once_and_follow_the_seed(n: int) -> None:
    seeds = list(range(1, n + 1))
    pairs = independent_pairs(seeds, seed=3)
    used = [s for pair in pairs for s in pair]
    assert len(pairs) == n // 2 and len(set(used)) == len(used) and set(used) <= set(seeds)
    assert all(a < b for a, b in pairs)
    assert pairs == independent_pairs(seeds[::-1], seed=3)  # the order the seeds are given in does not matter
    if n >= 7:
        assert any(independent_pairs(seeds, seed=s) != pairs for s in range(4, 8))


def test_every_pair_has_a_row_per_stage_with_its_barriers() -> None:
    arch = Architecture("mlp", 1, 6, (1, 4, 4), 3)
    models = {seed: initialise(arch, seed).state_dict() for seed in (1, 2, 3, 4)}
    spec = permutation_spec(arch)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 4, 4, generator=g)
    skeleton = initialise(arch, 0)
    data = SearchData(functional_forward(skeleton), x, torch.randint(0, 3, (64,), generator=g))
    rows = all_pair_barriers(spec, skeleton, models, data, get_search("none"), {}, alphas=ALPHAS, seed=5,
                             curve=(data.x, data.y))
    assert len(rows) == 6 * 2
    assert sum(r["independent"] for r in rows) == 2 * 2
    for before, after in zip(rows[::2], rows[1::2], strict=True):
        assert (before["stage"], after["stage"]) == ("before", "after")
        for column in BARRIERS:  # the identity permutation: after equals before
            assert after[column] == before[column]
    for column in BARRIERS:  # each row's indirect barrier is its stage's matrix's
        matrix = np.zeros((4, 4))
        for row in rows[::2]:
            matrix[row["a"] - 1, row["b"] - 1] = matrix[row["b"] - 1, row["a"] - 1] = row[column]
        indirect = indirect_barriers(matrix)
        assert all(row[f"indirect_{column}"] == indirect[row["a"] - 1, row["b"] - 1] for row in rows)
    with pytest.raises(ValueError, match="no point at 1/2"):
        all_pair_barriers(spec, skeleton, models, data, get_search("none"), {}, alphas=[0.0, 0.4, 1.0], seed=5,
                          curve=(data.x, data.y))


def test_barriers_are_measured_on_the_curve_examples_the_search_does_not_read() -> None:
    from permlmc.studies.groups import average_pairwise_barrier

    arch = Architecture("mlp", 1, 5, (1, 4, 4), 3)
    models = {seed: initialise(arch, seed).state_dict() for seed in (1, 2, 3)}
    spec = permutation_spec(arch)
    g = torch.Generator().manual_seed(1)
    skeleton = initialise(arch, 0)
    data = SearchData(functional_forward(skeleton), torch.randn(32, 1, 4, 4, generator=g),
                      torch.randint(0, 3, (32,), generator=g))
    curve = (torch.randn(80, 1, 4, 4, generator=g), torch.randint(0, 3, (80,), generator=g))
    rows = all_pair_barriers(spec, skeleton, models, data, get_search("brute_force"), {}, alphas=ALPHAS,
                             seed=0, curve=curve)
    for row in rows[::2]:  # before search: the pair as trained, on the curve examples
        expected = average_pairwise_barrier(skeleton, [models[row["a"]], models[row["b"]]], *curve, alphas=ALPHAS)
        assert all(row[column] == expected[column] for column in BARRIERS)
