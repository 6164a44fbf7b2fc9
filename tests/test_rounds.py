"""SA with rounds of candidate moves (permlmc.search.annealing.rounds) against simanneal's one-move loop.

The energies of rounds are checked against one-by-one evaluation for every registered model (the generic path) and
for MLP chains of depth 1-3 (the cached path); the loop with rounds of one move is checked to be simanneal's run
state for state; with larger rounds, the reported steps, the best state's energy and the chain's cache are checked
along whole runs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, permutation_spec
from permlmc.search import SearchData, get_search
from permlmc.search.annealing import chain_rounds
from permlmc.search.annealing.energy import MidpointEnergy, draw_proposals, draw_swaps, swapped
from permlmc.search.annealing.incremental import ChainMidpointEnergy, dense_chain
from permlmc.search.annealing.pairwise import midpoint_energy, resolve_candidates
from permlmc.search.annealing.rounds import AcceptanceRate, anneal_in_rounds
from permlmc.training.loop import initialise

SCHEDULE = {"tmax": 0.05, "tmin": 1e-4}


def _pair(arch: Architecture, examples: int = 300):
    a, b = initialise(arch, 0), initialise(arch, 1)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(examples, *arch.input_shape, generator=g)
    with torch.no_grad():
        y = torch.where(torch.rand(examples, generator=g) < 0.8, a(x).argmax(1), torch.randint(0, 10, (examples,)))
    return permutation_spec(arch), a.state_dict(), b.state_dict(), SearchData(functional_forward(a), x, y)


def _random_state(spec, params, seed: int):
    rng = np.random.default_rng(seed)
    return {name: rng.permutation(n) for name, n in spec.sizes(params).items()}, rng


@pytest.mark.parametrize("metric", ["error", "loss"])
def test_many_equals_one_by_one_for_every_model(arch: Architecture, metric: str) -> None:  # conftest: all models
    spec, a, b, data = _pair(arch, examples=40)
    full = MidpointEnergy(spec, a, b, data, metric)
    state, rng = _random_state(spec, a, 3)
    proposals = [draw_swaps(state, rng) for _ in range(5)]
    before = {k: v.copy() for k, v in state.items()}
    got = full.many(state, proposals).tolist()
    assert all(np.array_equal(state[k], before[k]) for k in state)
    expected = [full(swapped(state, swaps)) for swaps in proposals]
    assert got == pytest.approx(expected, abs=1e-5 if metric == "loss" else 1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("metric", ["error", "loss"])
def test_cached_many_and_take_match_recomputation(depth: int, metric: str) -> None:
    spec, a, b, data = _pair(Architecture("mlp", depth, 12, (1, 8, 8), 10))
    chain = ChainMidpointEnergy(spec, a, b, data, metric, dense_chain(spec, a))
    state, rng = _random_state(spec, a, 4)
    chain.reset(state)
    for _ in range(6):  # take one of each round and go on from there: the cache must follow
        proposals = [draw_swaps(state, rng) for _ in range(7)]
        got = chain.many(state, proposals).tolist()
        one_by_one = [chain.trial(state, swaps) for swaps in proposals]
        assert got == pytest.approx(one_by_one, abs=1e-6 if metric == "loss" else 1e-12)
        chain.many(state, proposals)
        index = int(rng.integers(len(proposals)))
        chain.take(index)
        state = swapped(state, proposals[index])
        assert chain.holds(state)
        assert chain.value == pytest.approx(got[index], abs=1e-12)
        cached = chain.value
        assert chain.reset(state) == pytest.approx(cached, abs=1e-6 if metric == "loss" else 1e-12)


def test_a_round_is_bounded_by_the_memory_it_needs() -> None:
    spec, a, b, data = _pair(Architecture("mlp", 2, 12, (1, 8, 8), 10))
    chain = ChainMidpointEnergy(spec, a, b, data, "error", dense_chain(spec, a))
    each = len(data.y) * (12 * 8 + 2 * 4 + (12 + 10) * 4)  # Z_1 (h_1 = 12) in float64, two H_0 rows, the head
    assert chain.largest_round() == chain_rounds.ROUND_BYTES // each
    saved = chain_rounds.ROUND_BYTES
    try:
        chain_rounds.ROUND_BYTES = 3 * each
        state, _ = _random_state(spec, a, 0)
        sizes: list[int] = []
        original = chain.many
        chain.many = lambda state, proposals: sizes.append(len(proposals)) or original(state, proposals)
        anneal_in_rounds(chain, state, np.random.default_rng(0), steps=200, updates=0, seed=0, candidates=32,
                         report=lambda *record: None, tmax=1e-6, tmin=1e-7)  # cold: long rounds wanted
        assert max(sizes) == 3
    finally:
        chain_rounds.ROUND_BYTES = saved


def test_take_without_many_is_refused() -> None:
    spec, a, b, data = _pair(Architecture("mlp", 1, 8, (1, 8, 8), 10))
    chain = ChainMidpointEnergy(spec, a, b, data, "error", dense_chain(spec, a))
    state, _ = _random_state(spec, a, 0)
    chain.reset(state)
    with pytest.raises(RuntimeError, match="many"):
        chain.take(0)


@pytest.mark.parametrize("arch", [Architecture("mlp", 2, 12, (1, 8, 8), 10), Architecture("cnn", 2, 4, (1, 8, 8), 10)],
                         ids=["mlp", "cnn"])
def test_rounds_of_one_move_are_simanneals_run(arch: Architecture) -> None:
    """Same seeds, same schedule: the loop with rounds of one reproduces simanneal's best state and its reports."""
    spec, a, b, data = _pair(arch)
    seed = 11
    reports: list[dict] = []
    simanneal = get_search("sa")(spec, a, b, data=data, generator=torch.Generator().manual_seed(seed),
                                 schedule="custom", steps=400, updates=20, metric="error", candidates=1,
                                 progress=reports.append, **SCHEDULE)
    seeds = torch.randint(0, 2**62, (2,), generator=torch.Generator().manual_seed(seed)).tolist()
    energy = midpoint_energy(spec, a, b, data, "error")
    state = {name: np.arange(n) for name, n in spec.sizes(a).items()}
    mine: list[tuple] = []
    best, best_energy = anneal_in_rounds(
        energy, state, np.random.default_rng(seeds[0]), steps=400, updates=20, seed=seeds[1], candidates=1,
        report=lambda *record: mine.append(record), **SCHEDULE)
    assert all(np.array_equal(best[k], simanneal[k].numpy()) for k in best)
    steps = [r for r in reports if r["event"] == "step"]
    assert [r[0] for r in mine] == [r["step"] for r in steps]
    assert [r[4] for r in mine] == [r["acceptance"] for r in steps]
    assert best_energy == pytest.approx(steps[-1]["best_energy"], abs=1e-9)


@pytest.mark.parametrize("energy_path", ["incremental", "full"])
def test_rounds_of_many_moves_anneal_to_the_energy_they_report(energy_path: str) -> None:
    spec, a, b, data = _pair(Architecture("mlp", 2, 12, (1, 8, 8), 10))
    energy = midpoint_energy(spec, a, b, data, "error", energy_path)
    state = {name: np.arange(n) for name, n in spec.sizes(a).items()}
    start = energy(state)
    reports: list[tuple] = []
    best, best_energy = anneal_in_rounds(
        energy, state, np.random.default_rng(0), steps=600, updates=30, seed=1, candidates=8,
        report=lambda *record: reports.append(record), **SCHEDULE)
    assert [r[0] for r in reports] == list(range(0, 601, 20))  # every step counted once, reports where simanneal's
    assert best_energy <= start and best_energy == min(r[3] for r in reports)
    assert MidpointEnergy(spec, a, b, data, "error")(best) == pytest.approx(best_energy, abs=1e-12)
    assert all(sorted(p) == list(range(len(p))) for p in best.values())
    if isinstance(energy, ChainMidpointEnergy):  # the cache followed the accepted moves
        assert energy.holds(state)
        assert energy.value == pytest.approx(energy.reset(state), abs=1e-12)


def test_search_with_candidates_records_them_and_returns_permutations() -> None:
    spec, a, b, data = _pair(Architecture("mlp", 1, 12, (1, 8, 8), 10))
    events: list[dict] = []
    perm = get_search("sa")(spec, a, b, data=data, generator=torch.Generator().manual_seed(0), schedule="custom",
                            steps=300, candidates=16, progress=events.append, **SCHEDULE)
    assert events[0]["candidates"] == 16
    assert all(sorted(p.tolist()) == list(range(len(p))) for p in perm.values())


def test_candidates_option_is_checked_and_auto_depends_on_the_device() -> None:
    assert resolve_candidates("auto", torch.device("cpu")) == 1
    assert resolve_candidates("auto", torch.device("cuda")) > 1
    assert resolve_candidates("auto", torch.device("cuda"), cached=False) == 1  # K stacked forwards: opt in
    assert resolve_candidates(4, torch.device("cpu")) == 4
    for bad in (0, -1, "many", 2.5, True):
        with pytest.raises(ValueError, match="sa candidates"):
            resolve_candidates(bad, torch.device("cpu"))


def test_round_size_follows_the_acceptance_rate() -> None:
    rate = AcceptanceRate()
    assert rate.round_size(32) == 2  # starts as if every move were accepted
    rate.add(200, 2)
    assert rate.round_size(32) == 32
    assert rate.round_size(8) == 8
    rate.add(400, 400)
    assert rate.round_size(32) <= 4
    sizes = set()
    for accepts in range(0, 300, 7):
        rate.add(300, accepts)
        sizes.add(rate.round_size(32))
    assert sizes <= {1, 2, 4, 8, 16, 32}  # powers of two: one CUDA graph each


def test_drawn_proposals_swap_distinct_units_and_leave_the_state() -> None:
    state = {"a": np.arange(5), "b": np.arange(2), "c": np.arange(1)}
    rng = np.random.default_rng(0)
    proposals = draw_proposals(state, rng, 4000)
    assert all(set(swaps) == {"a", "b"} and all(i != j for i, j in swaps.values()) for swaps in proposals)
    assert len({swaps["a"] for swaps in proposals}) == 20  # every ordered pair of distinct units of "a"
    assert np.array_equal(state["a"], np.arange(5))
    one = draw_proposals(state, np.random.default_rng(3), 1)[0]
    assert one == draw_swaps(state, np.random.default_rng(3))  # a round of one draws as simanneal's loop does


@pytest.mark.gpu
@pytest.mark.parametrize("depth", [1, 2])
def test_rounds_on_the_gpu_keep_the_cache_on_the_device_in_step(depth: int) -> None:
    spec, a, b, data = _pair(Architecture("mlp", depth, 12, (1, 8, 8), 10))
    gpu = torch.device("cuda")
    data = SearchData(data.forward, data.x.to(gpu), data.y.to(gpu))
    a, b = ({k: v.to(gpu) for k, v in p.items()} for p in (a, b))
    energy = midpoint_energy(spec, a, b, data, "loss", "incremental")
    state = {name: np.arange(n) for name, n in spec.sizes(a).items()}
    best, best_energy = anneal_in_rounds(energy, state, np.random.default_rng(0), steps=300, updates=0, seed=1,
                                         candidates=16, report=lambda *record: None, **SCHEDULE)
    assert isinstance(energy, ChainMidpointEnergy) and energy.holds(state)
    assert all(np.array_equal(energy._index[k].cpu().numpy(), p) for k, p in state.items())
    assert energy.value == pytest.approx(energy.reset(state), abs=1e-6)
    assert MidpointEnergy(spec, a, b, data, "loss")(best) == pytest.approx(best_energy, abs=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("depth", [1, 2])
def test_cuda_graph_rounds_equal_eager_rounds(depth: int) -> None:
    """The captured rounds read the cache where take() updates it in place: round after round they must give
    what the same rounds launched eagerly give."""
    import warnings

    spec, a, b, data = _pair(Architecture("mlp", depth, 12, (1, 8, 8), 10))
    gpu = torch.device("cuda")
    data = SearchData(data.forward, data.x.to(gpu), data.y.to(gpu))
    a, b = ({k: v.to(gpu) for k, v in p.items()} for p in (a, b))
    layers = dense_chain(spec, a)
    graphed = ChainMidpointEnergy(spec, a, b, data, "loss", layers)
    eager = ChainMidpointEnergy(spec, a, b, data, "loss", layers, graphs=False)
    state, rng = _random_state(spec, a, 5)
    graphed.reset(state)
    eager.reset(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a refused capture would warn and fall back
        for size in (1, 2, 4, 8, 4, 2, 8, 1, 8):
            proposals = draw_proposals(state, rng, size)
            mine, theirs = graphed.many(state, proposals).tolist(), eager.many(state, proposals).tolist()
            assert mine == pytest.approx(theirs, abs=1e-9)
            index = int(rng.integers(size))
            graphed.take(index)
            eager.take(index)
            state = swapped(state, proposals[index])
    assert graphed._graphs is not None and len(graphed._graphs.graphs) == 4
    assert graphed.holds(state) and graphed.value == pytest.approx(graphed.reset(state), abs=1e-6)  # float32 rows
