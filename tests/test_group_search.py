"""Group searches over n models: SA1/SA2 energies and search, lifted pairwise searches, average pairwise barrier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, permutation_spec
from permlmc.permutation import apply_permutation, compose, identity, random_permutation
from permlmc.search import SEARCHES, SearchData
from permlmc.search.annealing.energy import MidpointEnergy
from permlmc.search.annealing.group import AverageModelEnergy, GroupState, MeanPairwiseEnergy, copy_group, group_move
from permlmc.search.features import unit_features
from permlmc.search.group import (
    GROUP_SEARCHES,
    get_group_search,
    group_search_names,
    lift,
)
from permlmc.studies.groups import average_pairwise_barrier
from permlmc.training.loop import initialise

ENERGIES = {"sa1": MeanPairwiseEnergy, "sa2": AverageModelEnergy}
ALPHAS = [i / 10 for i in range(11)]


pytestmark = pytest.mark.usefixtures("one_thread")


SKELETON = initialise(Architecture("mlp", 1, 12, (1, 4, 4), 4), 0)
"""The networks of :func:`_planted` at its default width (the barrier's forward pass reads the weights given)."""


def _planted(n: int = 3, width: int = 12, seed: int = 0):
    """``n`` copies of one MLP, all but the first under a random permutation, with labels the network fits."""
    arch = Architecture("mlp", 1, width, (1, 4, 4), 4)
    model = initialise(arch, seed)
    a = model.state_dict()
    spec = permutation_spec(arch)
    g = torch.Generator().manual_seed(seed + 1)
    planted = [random_permutation(spec, a, g) for _ in range(n - 1)]
    params = [a] + [apply_permutation(spec, p, a) for p in planted]
    x = torch.randn(400, 1, 4, 4, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)  # every endpoint has error 0; undoing the plants gives energy 0 too
    return spec, params, planted, SearchData(functional_forward(model), x, y, unit_features(model, spec))


def _state(perms: list[dict[str, torch.Tensor]]) -> GroupState:
    return [{name: p.numpy().copy() for name, p in perm.items()} for perm in perms]


def _identities(spec, params) -> GroupState:
    return _state([identity(spec, p) for p in params])


def _is_identity(perm: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(p, torch.arange(len(p))) for p in perm.values())


@pytest.mark.parametrize("metric", ["error", "loss"])
@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_group_sa_lowers_its_energy_on_a_planted_problem(name: str, metric: str) -> None:
    spec, params, _, data = _planted()
    energy = ENERGIES[name](spec, params, data, metric)
    start = energy(_identities(spec, params))
    trace: list[dict] = []
    found = get_group_search(name)(spec, params, data=data, generator=torch.Generator().manual_seed(0),
                                   steps=1500, metric=metric, progress=trace.append)
    end = ENERGIES[name](spec, params, data, metric)(_state(found))
    assert len(found) == len(params) and _is_identity(found[0])
    for perm, model in zip(found, params, strict=True):
        spec.check_permutation(perm, model)
    assert start > 0.05
    assert end < start - 0.05
    assert trace[0]["event"] == "schedule" and trace[-1]["event"] == "done"
    assert trace[-1]["best_energy"] == pytest.approx(end, abs=1e-6)


@pytest.mark.parametrize("name", sorted(GROUP_SEARCHES))
def test_group_sa_is_deterministic_under_its_seed(name: str) -> None:
    spec, params, _, data = _planted()

    def run(seed: int) -> list[dict[str, torch.Tensor]]:
        return get_group_search(name)(spec, params, data=data, generator=torch.Generator().manual_seed(seed),
                                      steps=150)

    first, second, other = run(7), run(7), run(8)
    assert all(torch.equal(p[k], q[k]) for p, q in zip(first, second, strict=True) for k in p)
    assert any(not torch.equal(p[k], q[k]) for p, q in zip(first, other, strict=True) for k in p)


@pytest.mark.parametrize("metric", ["error", "loss"])
def test_two_model_energies_equal_the_pairwise_energy(metric: str) -> None:
    spec, params, _, data = _planted(n=2)
    state = _state([identity(spec, params[0]), random_permutation(spec, params[1], torch.Generator())])
    pairwise = MidpointEnergy(spec, params[0], params[1], data, metric)(state[1])
    assert AverageModelEnergy(spec, params, data, metric)(state) == pytest.approx(pairwise, abs=1e-12)
    # SA1 evaluates through vmap: same parameters, float32 rounding of a vectorised forward pass
    assert MeanPairwiseEnergy(spec, params, data, metric)(state) == pytest.approx(pairwise, abs=1e-6)


def test_energies_on_every_architecture(arch: Architecture, batch: torch.Tensor) -> None:
    """SA1 is the mean of the pairwise energies (through vmap, also for conv and BatchNorm networks), and both
    energies are unchanged when all models get one extra common permutation (a symmetry of the problem)."""
    models = [initialise(arch, seed) for seed in range(3)]
    params = [m.state_dict() for m in models]
    spec = permutation_spec(arch)
    data = SearchData(functional_forward(models[0]), batch, torch.arange(len(batch)) % arch.num_classes)
    g = torch.Generator().manual_seed(0)
    perms = [identity(spec, params[0])] + [random_permutation(spec, p, g) for p in params[1:]]
    permuted = [apply_permutation(spec, q, p) for q, p in zip(perms, params, strict=True)]
    pairs = [MidpointEnergy(spec, permuted[i], permuted[j], data, "loss")(_identities(spec, params)[0])
             for i, j in [(0, 1), (0, 2), (1, 2)]]
    assert MeanPairwiseEnergy(spec, params, data, "loss")(_state(perms)) == pytest.approx(sum(pairs) / 3, abs=1e-6)
    common = random_permutation(spec, params[0], g)
    for energy in ENERGIES.values():
        value = energy(spec, params, data, "loss")(_state(perms))
        shifted = energy(spec, params, data, "loss")(_state([compose(q, common) for q in perms]))
        assert shifted == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_cached_energy_matches_a_fresh_evaluation_along_a_walk(name: str) -> None:
    """Reused permuted copies and pair values must give what a new energy computes from scratch, including
    after returning to an earlier state (what simanneal does on a rejected move)."""
    spec, params, _, data = _planted(n=4)
    cached = ENERGIES[name](spec, params, data, "loss")
    rng = np.random.default_rng(0)
    state = _identities(spec, params)
    for step in range(12):
        previous = copy_group(state)
        group_move(state, rng)
        assert cached(state) == pytest.approx(ENERGIES[name](spec, params, data, "loss")(state), abs=1e-6)
        if step % 3 == 0:
            state = previous
    assert all((p == np.arange(len(p))).all() for p in state[0].values())  # the reference never moves


def test_group_move_changes_exactly_one_non_reference_model() -> None:
    spec, params, _, _ = _planted(n=5)
    rng = np.random.default_rng(1)
    moved = set()
    for _ in range(40):
        state = _identities(spec, params)
        model = group_move(state, rng)
        changed = [i for i, s in enumerate(state) if any((p != np.arange(len(p))).any() for p in s.values())]
        assert changed == [model] and model >= 1
        moved.add(model)
    assert moved == {1, 2, 3, 4}


def test_lifted_weight_matching_recovers_the_planted_permutations() -> None:
    spec, params, _, data = _planted(n=3)
    before = average_pairwise_barrier(SKELETON, params, data.x, data.y, alphas=ALPHAS)
    trace: list[dict] = []
    found = get_group_search("pairwise:weight_matching")(spec, params, data=data, generator=torch.Generator(),
                                                         progress=trace.append)
    aligned = [apply_permutation(spec, perm, model) for perm, model in zip(found, params, strict=True)]
    assert _is_identity(found[0])
    for model in aligned[1:]:
        assert all(torch.equal(model[k], params[0][k]) for k in params[0])
    after = average_pairwise_barrier(SKELETON, aligned, data.x, data.y, alphas=ALPHAS)
    assert before["error_barrier"] > 0.1
    assert after["loss_barrier"] == pytest.approx(0, abs=1e-6) and after["error_barrier"] == 0
    assert {record["model"] for record in trace} == {1, 2}


@pytest.mark.parametrize("method", sorted(SEARCHES))
def test_every_pairwise_search_lifts_to_a_group_search(method: str) -> None:
    spec, params, _, data = _planted(n=3, width=5)  # brute force: 5! candidates per pair
    options = {"steps": 30} if method in ("sa", "ste") else {}
    found = lift(method)(spec, params, data=data, generator=torch.Generator().manual_seed(0), **options)
    assert len(found) == 3 and _is_identity(found[0])
    for perm, model in zip(found, params, strict=True):
        spec.check_permutation(perm, model)
    if method == "none":
        assert all(_is_identity(perm) for perm in found)


def test_average_pairwise_barrier_of_identical_models_is_zero() -> None:
    spec, params, _, data = _planted(n=3)
    report = average_pairwise_barrier(SKELETON, [params[0]] * 3, data.x, data.y, alphas=ALPHAS)
    assert len(report["pairs"]) == 3
    for key in ("loss_barrier", "error_barrier", "loss_barrier_mid", "error_barrier_mid"):
        assert report[key] == pytest.approx(0, abs=1e-9)


def test_average_pairwise_barrier_is_symmetric_in_the_model_order() -> None:
    _, params, _, data = _planted(n=3, seed=3)  # differently permuted copies: three distinct barriers
    report = average_pairwise_barrier(SKELETON, params, data.x, data.y, alphas=ALPHAS)
    reordered = average_pairwise_barrier(SKELETON, params[::-1], data.x, data.y, alphas=ALPHAS)
    assert report["loss_barrier"] > 0.01 and report["error_barrier"] > 0.01
    for key in ("loss_barrier", "error_barrier", "loss_barrier_mid", "error_barrier_mid"):
        assert reordered[key] == pytest.approx(report[key], abs=1e-6)
    # pair (i, j) of the reversed list is pair (2 - j, 2 - i) of the original
    by_pair = {(r["i"], r["j"]): r for r in report["pairs"]}
    assert len({round(r["loss_barrier"], 6) for r in report["pairs"]}) == 3
    for r in reordered["pairs"]:
        assert r["loss_barrier"] == pytest.approx(by_pair[(2 - r["j"], 2 - r["i"])]["loss_barrier"], abs=1e-6)
    with pytest.raises(ValueError, match="no point at 1/2"):  # the midpoint the study tables read
        average_pairwise_barrier(SKELETON, params, data.x, data.y, alphas=[0.0, 0.3, 1.0])


def test_names_and_errors() -> None:
    assert {"sa1", "sa2", "pairwise:none", "pairwise:weight_matching", "pairwise:sa"} <= set(group_search_names())
    with pytest.raises(ValueError, match="'bogus' is unknown.*sa1"):
        get_group_search("bogus")
    with pytest.raises(ValueError, match="pairwise:bogus.*pairwise:weight_matching"):
        get_group_search("pairwise:bogus")
    spec, params, _, data = _planted(n=3, width=6)
    sa1 = get_group_search("sa1")
    with pytest.raises(ValueError, match="SearchData"):
        sa1(spec, params, generator=torch.Generator())
    with pytest.raises(ValueError, match="at least 2"):
        sa1(spec, params[:1], data=data, generator=torch.Generator())
    with pytest.raises(ValueError, match="at least 2"):
        lift("none")(spec, params[:1], generator=torch.Generator())
    with pytest.raises(TypeError, match="bogus"):
        sa1(spec, params, data=data, generator=torch.Generator(), bogus=1)
    with pytest.raises(ValueError, match="custom"):
        sa1(spec, params, data=data, generator=torch.Generator(), schedule="custom")
    with pytest.raises(ValueError, match="incremental"):
        sa1(spec, params, data=data, generator=torch.Generator(), energy="incremental")
    with pytest.raises(ValueError, match="metric"):
        sa1(spec, params, data=data, generator=torch.Generator(), metric="accuracy")
    trace: list[dict] = []
    get_group_search("sa2")(spec, params, data=data, generator=torch.Generator(), schedule="paper", steps=10,
                            progress=trace.append)
    assert trace[0]["tmax"] == 25000 and trace[0]["tmin"] == 2.5 and trace[0]["models"] == 3
