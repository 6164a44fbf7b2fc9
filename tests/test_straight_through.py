"""The straight-through estimator (search method ``ste``): it recovers a planted permutation of every registered
model, never returns a permutation worse than the identity on its subset, learns from the data, and is
deterministic under its generator."""

from __future__ import annotations

import pytest
import torch
from tests.conftest import INPUT_SHAPE, small_architectures

from permlmc.evaluation import evaluate, functional_forward
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.permutation import apply_permutation, identity, invert, random_permutation
from permlmc.search import SearchData, get_search
from permlmc.training.loop import initialise

STE = get_search("ste")


def _data(model: torch.nn.Module, n: int = 64, labels: dict | None = None) -> SearchData:
    """Random inputs; labels at random, or the predictions of the network ``labels`` (a state dict of ``model``),
    for which that network is the better fit."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *INPUT_SHAPE, generator=g)
    forward = functional_forward(model)
    y = torch.randint(0, 10, (n,), generator=g) if labels is None else forward(labels, x).argmax(1)
    return SearchData(forward, x, y)


def _midpoint_loss(spec, a, b, perm, data: SearchData) -> float:
    permuted = apply_permutation(spec, perm, b)
    mid = {k: (v + permuted[k]) / 2 if v.is_floating_point() else v for k, v in a.items()}
    return evaluate(data.forward, mid, data.x, data.y).loss


@pytest.mark.parametrize("arch", [a for a in small_architectures() if a.model_name == "mlp"], ids=lambda a: a.name)
def test_ste_recovers_a_planted_permutation(arch: Architecture) -> None:
    model = initialise(arch, 0)
    spec = permutation_spec(arch)
    a = dict(model.state_dict())
    planted = random_permutation(spec, a, torch.Generator().manual_seed(1))
    b = apply_permutation(spec, planted, a)
    data = _data(model, labels=a)  # A's own predictions: the true permutation's midpoint, A itself, fits them best
    trace: list[dict] = []
    found = STE(spec, a, b, data=data, generator=torch.Generator().manual_seed(2), steps=20, progress=trace.append)
    truth = invert(planted)
    assert all(torch.equal(found[k], truth[k]) for k in truth)
    assert trace[-1]["step"] == 20
    assert trace[-1]["best"] == pytest.approx(evaluate(data.forward, a, data.x, data.y).loss, abs=1e-5)


@pytest.mark.parametrize("arch", small_architectures(), ids=lambda a: a.name)
def test_ste_returns_the_best_permutation_it_measured_on_every_model(arch: Architecture) -> None:
    model = initialise(arch, 0)
    spec = permutation_spec(arch)
    a, b = dict(model.state_dict()), dict(initialise(arch, 1).state_dict())
    data = _data(model)
    trace: list[dict] = []
    found = STE(spec, a, b, data=data, generator=torch.Generator().manual_seed(2), steps=6, progress=trace.append)
    spec.check_permutation(found, b)
    loss = _midpoint_loss(spec, a, b, found, data)
    assert loss == pytest.approx(min(t["best"] for t in trace), abs=1e-6)
    assert loss <= _midpoint_loss(spec, a, b, identity(spec, b), data) + 1e-6


def test_ste_learns_a_better_permutation_than_the_identity_and_is_deterministic() -> None:
    arch = Architecture("mlp", 2, 16, INPUT_SHAPE, 10)
    spec = permutation_spec(arch)
    model = build_model(arch)
    a, b = dict(initialise(arch, 1).state_dict()), dict(initialise(arch, 2).state_dict())
    data = _data(model, 256)
    runs = [STE(spec, a, b, data=data, generator=torch.Generator().manual_seed(0), steps=40, lr=0.01)
            for _ in range(2)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    for name, p in runs[0].items():
        assert sorted(p.tolist()) == list(range(16)), name
    learnt = _midpoint_loss(spec, a, b, runs[0], data)
    assert learnt < _midpoint_loss(spec, a, b, identity(spec, b), data)


def test_ste_options_are_checked() -> None:
    arch = small_architectures()[0]
    model = initialise(arch, 0)
    spec, a = permutation_spec(arch), dict(model.state_dict())
    with pytest.raises(ValueError, match="needs data"):
        STE(spec, a, a, generator=torch.Generator())
    with pytest.raises(ValueError, match="steps >= 1"):
        STE(spec, a, a, data=_data(model), generator=torch.Generator(), steps=0)
    with pytest.raises(TypeError, match="temperature"):
        STE(spec, a, a, data=_data(model), generator=torch.Generator(), temperature=1)
