"""Attention heads groups in every search: each method of the registry (and each group search, and MergeMany) either
returns permutations that move whole heads, every member's alike, or refuses the spec by name; SA's moves keep heads
whole step after step and, for specs without heads, draw one swap per permutation as simanneal's move does; weight
matching recovers a planted whole-head permutation. Run on a toy attention built here and on the registered ``vit``
family."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from permlmc.axes import Heads, SpecError, check_heads, within_heads
from permlmc.evaluation import functional_forward
from permlmc.models import MODELS, Architecture, permutation_spec
from permlmc.models.entries import dense
from permlmc.permutation import PermutationSpec, apply_permutation, random_permutation
from permlmc.search import SEARCHES, SearchData, get_search
from permlmc.search.annealing.energy import MidpointEnergy, State, draw_proposals, draw_swaps, swap_move, swapped
from permlmc.search.annealing.group import group_move
from permlmc.search.annealing.incremental import ChainMidpointEnergy, dense_chain
from permlmc.search.annealing.pairwise import midpoint_energy
from permlmc.search.brute_force import candidates, count
from permlmc.search.features import unit_features
from permlmc.search.functional_difference import greedy_head_matching, greedy_matching
from permlmc.search.group import PAIRWISE_PREFIX, get_group_search
from permlmc.search.merge_many import merge_many
from permlmc.training.loop import initialise

HEADS, BLOCK, EMBED, INPUTS, TOKENS, CLASSES = 3, 2, 3, 5, 4, 3
"""The toy attention: 3 heads of 2 dimensions over 4 tokens of 3 embedded features."""
OPTIONS: dict[str, dict[str, Any]] = {"sa": {"steps": 200}, "ste": {"steps": 4}}
"""Small budgets: whether heads stay whole is under test, not the quality."""
REFUSE_HEADS: frozenset[str] = frozenset()
"""Methods that cannot keep heads whole and say so (none: each pairs the members of a group together)."""


pytestmark = pytest.mark.usefixtures("one_thread")


class ToyAttention(nn.Module):
    """One attention layer on embedded tokens ``(N, T, INPUTS)``, logits averaged over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(INPUTS, EMBED)
        self.q, self.k, self.v = (nn.Linear(EMBED, HEADS * BLOCK) for _ in range(3))
        self.o = nn.Linear(HEADS * BLOCK, CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.embed(x))  # (N, T, EMBED)
        q, k, v = (layer(h).unflatten(-1, (HEADS, BLOCK)).transpose(1, 2) for layer in (self.q, self.k, self.v))
        y = torch.softmax(q @ k.transpose(-1, -2) / BLOCK**0.5, dim=-1) @ v  # (N, HEADS, T, BLOCK)
        return self.o(y.transpose(1, 2).flatten(2)).mean(1)  # (N, CLASSES)


def toy_spec() -> PermutationSpec:
    """``embed`` a plain permutation; queries and keys share ``qk``, values and outputs ``vo``, one heads group."""
    axes = {**dense("embed", None, "embed"), **dense("q", "embed", "qk"), **dense("k", "embed", "qk"),
            **dense("v", "embed", "vo"), **dense("o", "vo", None)}
    return PermutationSpec(axes, heads=(Heads(("qk", "vo"), BLOCK),))


Case = tuple[PermutationSpec, dict[str, Tensor], SearchData]


def toy_case(seed: int = 0) -> Case:
    torch.manual_seed(seed)
    model = ToyAttention()
    spec = toy_spec()
    x = torch.randn(32, TOKENS, INPUTS, generator=torch.Generator().manual_seed(seed))
    return spec, dict(model.state_dict()), _data(model, spec, x)


def vit_case(seed: int = 0) -> Case:
    arch = Architecture("vit", 1, 8, (1, 8, 8), 10)
    model = initialise(arch, seed)
    spec = permutation_spec(arch)
    x = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    return spec, dict(model.state_dict()), _data(model, spec, x)


def _data(model: nn.Module, spec: PermutationSpec, x: Tensor) -> SearchData:
    forward = functional_forward(model)
    with torch.no_grad():
        y = model(x).argmax(1)
    return SearchData(forward, x, y, features=unit_features(model, spec))


CASES: dict[str, Callable[[], Case]] = {"toy": toy_case, **({"vit": vit_case} if "vit" in MODELS else {})}


def _same(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_toy_attention_is_invariant_under_whole_head_permutations_only() -> None:
    spec, a, data = toy_case()
    spec.validate(a)
    perm = random_permutation(spec, a, torch.Generator().manual_seed(1))
    spec.check_permutation(perm, a)
    torch.testing.assert_close(data.forward(apply_permutation(spec, perm, a), data.x), data.forward(a, data.x))
    mixed = {**perm, "qk": torch.tensor([2, 1, 0, 3, 4, 5])}  # unit 0 of head 0 and unit 0 of head 1 exchanged
    with pytest.raises(SpecError, match="whole heads"):
        spec.check_permutation(mixed, a)
    assert not torch.allclose(data.forward(apply_permutation(spec, mixed, a), data.x), data.forward(a, data.x))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", sorted(SEARCHES))
def test_every_search_keeps_heads_whole_or_refuses_by_name(method: str, case: str) -> None:
    spec, a, data = CASES[case]()
    b = apply_permutation(spec, random_permutation(spec, a, torch.Generator().manual_seed(1)), a)
    try:
        found = get_search(method)(spec, a, b, data=data, generator=torch.Generator().manual_seed(0),
                                   **OPTIONS.get(method, {}))
    except SpecError as error:
        assert method in REFUSE_HEADS and method in str(error) and "heads" in str(error)
        return
    except ValueError as error:  # a problem too large for an exhaustive search, not a refusal of heads
        assert method == "brute_force" and case != "toy" and "candidates" in str(error)
        return
    assert method not in REFUSE_HEADS
    spec.check_permutation(found, b)


def test_sa_rounds_of_several_moves_keep_heads_whole() -> None:
    spec, a, data = toy_case()
    b = apply_permutation(spec, random_permutation(spec, a, torch.Generator().manual_seed(1)), a)
    found = get_search("sa")(spec, a, b, data=data, generator=torch.Generator().manual_seed(0), steps=300,
                             candidates=8)
    spec.check_permutation(found, b)


@pytest.mark.parametrize("name", ["sa1", "sa2", PAIRWISE_PREFIX + "sa", PAIRWISE_PREFIX + "functional_difference"])
def test_group_searches_keep_heads_whole(name: str) -> None:
    spec, a, data = toy_case()
    g = torch.Generator().manual_seed(1)
    models = [a, *(apply_permutation(spec, random_permutation(spec, a, g), a) for _ in range(2))]
    options = {"steps": 100} if name.endswith(("sa", "sa1", "sa2")) else {}
    perms = get_group_search(name)(spec, models, data=data, generator=torch.Generator().manual_seed(0), **options)
    for perm, model in zip(perms, models, strict=True):
        spec.check_permutation(perm, model)


def test_greedy_head_matching_pairs_whole_heads_alike_in_every_member() -> None:
    block, heads = 2, 3
    truth = within_heads(torch.tensor([2, 0, 1]), torch.tensor([[1, 0], [0, 1], [1, 0]]))
    other = within_heads(torch.tensor([2, 0, 1]), torch.tensor([[0, 1], [0, 1], [0, 1]]))
    g = torch.Generator().manual_seed(0)
    distances = []
    for planted in (truth, other):  # distance 0 at the planted pairs, at least 1 elsewhere
        distance = 1 + torch.rand(6, 6, generator=g, dtype=torch.float64)
        distance[torch.arange(6), planted] = 0
        distances.append(distance)
    found = greedy_head_matching(distances, block)
    assert torch.equal(found[0], truth) and torch.equal(found[1], other)
    # unit 2 of A (head 1, planted on B's head 0) is closest to unit 4 of B (head 2): pairing single units greedily
    # splits A's head 1 over two heads of B; pairing heads first keeps the planted heads
    distances[0][2, 4] = -1.0
    single = greedy_matching(distances[0])
    assert single[2] == 4 and single[3] // block != 2
    found = greedy_head_matching(distances, block)
    check_heads(Heads(("x", "y"), block), {"x": found[0], "y": found[1]})
    assert torch.equal(found[0], truth) and torch.equal(found[1], other) and len(truth) == heads * block


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_many_keeps_heads_whole_and_merges_planted_copies_back(case: str) -> None:
    spec, base, _ = CASES[case]()
    g = torch.Generator().manual_seed(1)
    models = [base, *(apply_permutation(spec, random_permutation(spec, base, g), base) for _ in range(2))]
    perms = merge_many(spec, models, generator=torch.Generator().manual_seed(0))
    for perm, model in zip(perms, models, strict=True):
        spec.check_permutation(perm, model)
        assert _same(apply_permutation(spec, perm, model), base)


@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_matching_recovers_a_planted_whole_head_permutation(case: str) -> None:
    spec, a, _ = CASES[case]()
    planted = random_permutation(spec, a, torch.Generator().manual_seed(3))
    assert any(not torch.equal(planted[m], torch.arange(len(planted[m]))) for g in spec.heads for m in g.members)
    b = apply_permutation(spec, planted, a)
    found = get_search("weight_matching")(spec, a, b, generator=torch.Generator().manual_seed(0))
    spec.check_permutation(found, b)
    assert _same(apply_permutation(spec, found, b), a)


def _state(spec: PermutationSpec, params: dict[str, Tensor], seed: int) -> State:
    """A random whole-head state (numpy, as the annealer holds it)."""
    perm = random_permutation(spec, params, torch.Generator().manual_seed(seed))
    return {name: p.numpy().copy() for name, p in perm.items()}


def _check(spec: PermutationSpec, state: State) -> None:
    perm = {name: torch.from_numpy(p.copy()) for name, p in state.items()}
    for group in spec.heads:
        check_heads(group, perm)
    for name, p in state.items():
        assert sorted(p.tolist()) == list(range(len(p))), name


@pytest.mark.parametrize("case", sorted(CASES))
def test_sa_moves_keep_heads_whole_step_after_step(case: str) -> None:
    spec, a, _ = CASES[case]()
    state, rng = _state(spec, a, 0), np.random.default_rng(0)
    group, heads_swapped, units_swapped = spec.heads[0], 0, 0
    for _ in range(500):
        before = {name: p.copy() for name, p in state.items()}
        swaps = swap_move(state, rng, spec.heads)
        _check(spec, state)
        assert all(not np.array_equal(state[n], before[n]) for n in spec.names if spec.group_of(n) is None)
        moved = [not np.array_equal(state[m], before[m]) for m in group.members]
        if isinstance(swaps[group.members[0]][0], np.ndarray):  # two whole heads, the same in every member
            heads_swapped += 1
            assert all(moved) and len({tuple(swaps[m][0]) + tuple(swaps[m][1]) for m in group.members}) == 1
        else:  # two units within one head of each member
            units_swapped += 1
            assert all(moved) and all(i // group.head_size == j // group.head_size for i, j in
                                      (swaps[m] for m in group.members))
    assert 150 < heads_swapped < 350 and units_swapped == 500 - heads_swapped  # HEAD_SWAP = 1/2
    for proposal in draw_proposals(state, rng, 64, spec.heads):
        _check(spec, swapped(state, proposal))
    models = [_state(spec, a, seed) for seed in range(3)]
    for _ in range(100):
        group_move(models, rng, spec.heads)
    for model in models:
        _check(spec, model)


def test_groups_of_one_head_or_of_single_units_move_as_they_can() -> None:
    state = {"qk": np.arange(4), "vo": np.arange(4), "one": np.arange(4), "alone": np.arange(4)}
    heads = (Heads(("qk", "vo"), 1), Heads(("one",), 4), Heads(("alone",), 1))
    rng = np.random.default_rng(0)
    for _ in range(50):
        swap_move(state, rng, heads)
        assert np.array_equal(state["qk"], state["vo"])  # blocks of one unit: the members move as one permutation
    tiny = {"x": np.arange(1)}
    assert draw_swaps(tiny, rng, (Heads(("x",), 1),)) == {}  # one head of one unit: nothing to move


def _old_draw_swaps(state: State, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """The draws of a spec without heads written out: two distinct units of every permutation of width >= 2."""
    swaps = {}
    for name, p in state.items():
        if len(p) >= 2:
            i, j = rng.choice(len(p), size=2, replace=False)
            swaps[name] = (int(i), int(j))
    return swaps


def _old_draw_proposals(state: State, rng: np.random.Generator, count: int) -> list[dict[str, tuple[int, int]]]:
    """Several moves of a spec without heads written out: for each permutation, ``count`` pairs of distinct units."""
    if count == 1:
        return [_old_draw_swaps(state, rng)]
    pairs = {}
    for name, p in state.items():
        if len(p) >= 2:
            i = rng.integers(0, len(p), count)
            j = rng.integers(0, len(p) - 1, count)
            pairs[name] = (i, j + (j >= i))
    return [{name: (int(i[k]), int(j[k])) for name, (i, j) in pairs.items()} for k in range(count)]


def _old_swap_move(state: State, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    swaps = _old_draw_swaps(state, rng)
    for name, (i, j) in swaps.items():
        p = state[name]
        p[i], p[j] = p[j], p[i]
    return swaps


def test_moves_without_heads_draw_exactly_as_before() -> None:
    state = {"wide": np.arange(12), "narrow": np.arange(1), "pair": np.arange(2), "hidden": np.arange(6)}
    new, old = np.random.default_rng(7), np.random.default_rng(7)
    mine, theirs = {k: v.copy() for k, v in state.items()}, {k: v.copy() for k, v in state.items()}
    for step in range(200):
        assert swap_move(mine, new) == _old_swap_move(theirs, old)
        size = 1 + step % 5
        assert draw_proposals(mine, new, size, ()) == _old_draw_proposals(theirs, old, size)
    assert all(np.array_equal(mine[k], theirs[k]) for k in state)
    assert new.random() == old.random()  # the generators are in the same state


def test_the_incremental_energy_does_not_apply_to_heads() -> None:
    arch = Architecture("mlp", 2, 4, (1, 4, 4), 10)
    plain = permutation_spec(arch)
    params = dict(initialise(arch, 0).state_dict())
    assert dense_chain(plain, params) is not None
    hidden = plain.names[0]
    spec = PermutationSpec(plain.axes, heads=(Heads((hidden,), 2),))
    assert dense_chain(spec, params) is None
    model = initialise(arch, 0)
    x = torch.randn(16, 1, 4, 4)
    data = SearchData(functional_forward(model), x, torch.zeros(16, dtype=torch.int64))
    with pytest.raises(ValueError, match="'incremental' does not apply"):
        midpoint_energy(spec, params, params, data, "error", "incremental")
    with pytest.raises(ValueError, match="cannot keep attention heads whole"):
        ChainMidpointEnergy(spec, params, params, data, "error", dense_chain(plain, params))
    found = get_search("sa")(spec, params, params, data=data, generator=torch.Generator(), steps=50)
    spec.check_permutation(found, params)


def test_brute_force_enumerates_every_whole_head_permutation_once() -> None:
    spec, a, data = toy_case()
    sizes = spec.sizes(a)
    every = list(candidates(spec, sizes))
    assert len(every) == count(spec, sizes) == 3 * 2 * (6 * 2**6)  # embed 3!; heads 3! (2!)^(3 heads x 2 members)
    assert len(set(every)) == len(every)
    assert every[0] == tuple(tuple(range(n)) for n in sizes.values())  # the identity first
    for values in every[:: len(every) // 50]:
        spec.check_permutation({name: torch.tensor(v) for name, v in zip(sizes, values, strict=True)}, a)
    b = apply_permutation(spec, random_permutation(spec, a, torch.Generator().manual_seed(3)), a)
    wm = get_search("weight_matching")(spec, a, b, generator=torch.Generator())
    assert _same(apply_permutation(spec, wm, b), a)  # the planted alignment, of energy 0
    found = get_search("brute_force")(spec, a, b, data=data, generator=torch.Generator(), metric="loss")
    energy = MidpointEnergy(spec, a, b, data, "loss")
    assert energy({k: v.numpy() for k, v in found.items()}) <= energy({k: v.numpy() for k, v in wm.items()}) + 1e-6
    plain = PermutationSpec(spec.axes)  # without heads: every permutation of every name, in product order
    assert count(plain, sizes) == math.factorial(3) * math.factorial(6) ** 2
    small = {"embed": 3, "qk": 3}
    orders = list(itertools.permutations(range(3)))
    assert list(candidates(plain, small)) == list(itertools.product(orders, orders))
