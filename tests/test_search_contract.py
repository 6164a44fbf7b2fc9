"""The contract of every search method of the registry, on every registered model: a valid permutation of the spec,
the same one for the same seed, its inputs left as they were, and a midpoint no worse than the identity's on S′ (B a
random permutation of A) and between a network and itself (where the identity is best: a method may still move
units that are dead on the data, which ties)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.conftest import INPUT_SHAPE

from permlmc.evaluation import evaluate, functional_forward
from permlmc.model_names import split_model_name
from permlmc.models import MODELS, Architecture, model_names, permutation_spec
from permlmc.permutation import apply_permutation, identity, random_permutation
from permlmc.search import SEARCHES, SearchData, get_search
from permlmc.search.features import unit_features
from permlmc.training.loop import initialise

OPTIONS: dict[str, dict[str, Any]] = {"sa": {"steps": 20}, "ste": {"steps": 4}}
"""Small budgets: the contract, not the quality, is under test."""
CASES = [(method, Architecture(name, MODELS[split_model_name(name)[0]].example_depths[0], 4, INPUT_SHAPE, 10))
         for method in sorted(SEARCHES) for name in model_names()]


def _data(arch: Architecture, params: dict) -> SearchData:
    model = initialise(arch, 0)
    forward = functional_forward(model)
    x = torch.randn(32, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    return SearchData(forward, x, forward(params, x).argmax(1), features=unit_features(model, permutation_spec(arch)))


def _run(method: str, spec, a: dict, b: dict, data: SearchData, seed: int = 0) -> dict | None:
    """The method's permutation, or None where it refuses the problem by name (brute force on too many
    candidates)."""
    try:
        return get_search(method)(spec, a, b, data=data, generator=torch.Generator().manual_seed(seed),
                                  **OPTIONS.get(method, {}))
    except ValueError as error:
        if method == "brute_force" and "candidates" in str(error):
            return None
        raise


def _midpoint_error(spec, a: dict, b: dict, perm: dict, data: SearchData) -> float:
    permuted = apply_permutation(spec, perm, b)
    mid = {k: (v + permuted[k]) / 2 if v.is_floating_point() else v for k, v in a.items()}
    return evaluate(data.forward, mid, data.x, data.y).error


@pytest.mark.parametrize(("method", "arch"), CASES, ids=[f"{m}-{a.model_name}" for m, a in CASES])
def test_every_search_keeps_the_contract(method: str, arch: Architecture) -> None:
    spec = permutation_spec(arch)
    a = {k: v.clone() for k, v in initialise(arch, 0).state_dict().items()}
    b = apply_permutation(spec, random_permutation(spec, a, torch.Generator().manual_seed(1)), a)  # S′
    data = _data(arch, a)
    before = {k: v.clone() for k, v in b.items()}
    found = _run(method, spec, a, b, data)
    if found is None:
        return
    spec.check_permutation(found, b)
    assert all(torch.equal(b[k], before[k]) for k in b), "the search changed its input"
    assert all(torch.equal(found[k], p) for k, p in _run(method, spec, a, b, data).items())  # same seed
    none = identity(spec, b)
    assert _midpoint_error(spec, a, b, found, data) <= _midpoint_error(spec, a, b, none, data) + 1e-12
    itself = _run(method, spec, a, a, data, seed=2)
    assert itself is not None and _midpoint_error(spec, a, a, itself, data) <= _midpoint_error(spec, a, a, none, data)
