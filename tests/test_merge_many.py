"""MergeMany and cycle consistency: planted copies of any registered model merge back to the original, for n = 2
the result is a fixed point of pairwise weight matching, and the cycle error counts the units two routes differ on."""

from __future__ import annotations

import pytest
import torch
from tests.conftest import small_architectures

from permlmc.models import Architecture, permutation_spec
from permlmc.permutation import apply_permutation, compose, random_permutation
from permlmc.search.merge_many import cycle_error, merge_many
from permlmc.search.weight_matching import match
from permlmc.search.weight_matching import search as weight_matching
from permlmc.training.loop import initialise


def _copies(arch: Architecture, n: int):
    spec = permutation_spec(arch)
    base = dict(initialise(arch, 0).state_dict())
    planted = [random_permutation(spec, base, torch.Generator().manual_seed(s)) for s in range(1, n)]
    return spec, base, [base, *(apply_permutation(spec, q, base) for q in planted)]


@pytest.mark.parametrize("arch", small_architectures(), ids=lambda a: a.name)
def test_planted_copies_merge_back_to_the_original(arch: Architecture) -> None:
    spec, base, models = _copies(arch, 3)
    perms = merge_many(spec, models, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(p, torch.arange(len(p))) for p in perms[0].values())  # model 0 keeps the identity
    for perm, model in zip(perms, models, strict=True):
        aligned = apply_permutation(spec, perm, model)
        assert all(torch.equal(aligned[k], base[k]) for k in base)


def test_for_two_models_the_result_is_a_fixed_point_of_pairwise_weight_matching() -> None:
    arch = small_architectures()[1]
    spec = permutation_spec(arch)
    a, b = (dict(initialise(arch, s).state_dict()) for s in (1, 2))
    perms = merge_many(spec, [a, b], generator=torch.Generator().manual_seed(0))
    again = match(spec, a, b, perms[1], generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(again[name], perms[1][name]) for name in perms[1])


def test_cycle_error_is_zero_for_consistent_alignments_and_counts_the_units_that_differ() -> None:
    arch = small_architectures()[1]
    spec, _, (a, b, c) = _copies(arch, 3)
    g = torch.Generator().manual_seed(0)
    p_ab, p_bc, p_ac = (weight_matching(spec, x, y, generator=g) for x, y in ((a, b), (b, c), (a, c)))
    through = apply_permutation(spec, p_ab, apply_permutation(spec, p_bc, c))
    assert all(torch.equal(through[k], apply_permutation(spec, compose(p_bc, p_ab), c)[k]) for k in c)
    assert cycle_error(p_ab, p_bc, p_ac) == 0.0
    name = spec.names[0]
    wrong = {**p_ac, name: p_ac[name][torch.tensor([1, 0, *range(2, len(p_ac[name]))])]}
    total = sum(len(p) for p in p_ac.values())
    assert cycle_error(p_ab, p_bc, wrong) == pytest.approx(2 / total)
