"""Invariants of the permutation core, over every registered model."""

from __future__ import annotations

import pytest
import torch
from tests.conftest import small_architectures
from tests.rounding import magnitude, rounding_tolerance, to_float64
from tests.traced_models import TRACED

from permlmc.axes import Heads, SpecError
from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.models.entries import dense
from permlmc.permutation import (
    PermutationSpec,
    agreement,
    apply_permutation,
    compose,
    identity,
    invert,
    leave_in_place,
    permutation_layout,
    planted_alignment,
    random_permutation,
)
from permlmc.search import get_search
from permlmc.search.weight_matching import neighbours
from permlmc.tracing import derive_spec
from permlmc.training.loop import initialise


def _setup(arch: Architecture, seed: int = 0):
    model = initialise(arch, seed)
    params = model.state_dict()
    spec = permutation_spec(arch)
    return model, params, spec


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_spec_covers_state_dict(arch: Architecture) -> None:
    _, params, spec = _setup(arch)
    spec.validate(params)
    assert set(spec.axes) == set(params)


def test_permuted_network_is_the_same_function(arch: Architecture, batch: torch.Tensor) -> None:
    model, params, spec = _setup(arch)
    params, batch = to_float64(params), batch.double()  # float64: rounding far below any wrong channel
    perm = random_permutation(spec, params, torch.Generator().manual_seed(1))
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perm.values())
    permuted = apply_permutation(spec, perm, params)
    assert not _same(permuted, params)
    forward = functional_forward(model)
    expected = forward(params, batch)
    # permuted units reorder every sum: rounding only, tau = L sqrt(n) eps64 of the largest logit (tests/rounding.py)
    tau = rounding_tolerance(model, arch.input_shape, rows=len(batch), dtype=torch.float64)
    torch.testing.assert_close(forward(permuted, batch), expected, rtol=0, atol=tau * magnitude(expected))


def test_invert_undoes_apply(arch: Architecture) -> None:
    _, params, spec = _setup(arch)
    perm = random_permutation(spec, params, torch.Generator().manual_seed(2))
    assert _same(apply_permutation(spec, invert(perm), apply_permutation(spec, perm, params)), params)
    assert _same(apply_permutation(spec, identity(spec, params), params), params)


def test_compose_matches_sequential_application(arch: Architecture) -> None:
    _, params, spec = _setup(arch)
    g = torch.Generator().manual_seed(3)
    p, q = random_permutation(spec, params, g), random_permutation(spec, params, g)
    sequential = apply_permutation(spec, q, apply_permutation(spec, p, params))
    assert _same(apply_permutation(spec, compose(p, q), params), sequential)
    for value in (p, q, compose(p, q), invert(p)):  # heads groups: draws, products and inverses move whole heads
        spec.check_permutation(value, params)


def test_planted_alignment_maps_one_copy_onto_the_other(arch: Architecture) -> None:
    _, params, spec = _setup(arch)
    g = torch.Generator().manual_seed(5)
    p_a, p_b = random_permutation(spec, params, g), random_permutation(spec, params, g)
    copy_a, copy_b = apply_permutation(spec, p_a, params), apply_permutation(spec, p_b, params)
    planted = planted_alignment(p_a, p_b)
    assert _same(apply_permutation(spec, planted, copy_b), copy_a)
    assert agreement(planted, planted)["all"] == 1.0
    assert agreement(identity(spec, params), planted)["all"] < 1.0  # widths >= 6: a random draw is not identity


def test_agreement_pools_units_over_permutations() -> None:
    found = {"p": torch.tensor([0, 1, 2, 3]), "q": torch.tensor([1, 0])}
    truth = {"p": torch.tensor([0, 1, 3, 2]), "q": torch.tensor([1, 0])}
    assert agreement(found, truth) == pytest.approx({"all": 4 / 6, "p": 0.5, "q": 1.0})


def test_apply_does_not_modify_its_input(arch: Architecture) -> None:
    _, params, spec = _setup(arch)
    before = {k: v.clone() for k, v in params.items()}
    apply_permutation(spec, random_permutation(spec, params, torch.Generator().manual_seed(4)), params)
    assert _same(params, before)


def test_weight_matching_recovers_planted_permutation(arch: Architecture) -> None:
    _, params, spec = _setup(arch)
    planted = random_permutation(spec, params, torch.Generator().manual_seed(5))
    permuted = apply_permutation(spec, planted, params)
    found = get_search("weight_matching")(spec, params, permuted, generator=torch.Generator().manual_seed(0))
    assert _same(found, invert(planted))
    assert _same(apply_permutation(spec, found, permuted), params)


def test_weight_matching_recovers_planted_permutation_under_noise() -> None:
    arch = Architecture("mlp", 2, 32, (1, 8, 8), 10)
    _, params, spec = _setup(arch)
    g = torch.Generator().manual_seed(6)
    planted = random_permutation(spec, params, g)
    noisy = {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in params.items()}
    found = get_search("weight_matching")(spec, params, apply_permutation(spec, planted, noisy), generator=g)
    assert _same(found, invert(planted))


def test_weight_matching_without_statistics_reads_weights_only() -> None:
    arch = Architecture("resnet", 20, 6, (1, 8, 8), 10)
    _, params, spec = _setup(arch)
    g = torch.Generator().manual_seed(7)
    planted = random_permutation(spec, params, g)
    permuted = apply_permutation(spec, planted, params)
    # running statistics 100x larger than any weight, in A and B unrelated to each other and to the weights
    def scramble(state: dict) -> dict:
        return {k: 100 * torch.rand(v.shape, generator=g) if k.endswith(("running_mean", "running_var")) else v
                for k, v in state.items()}

    params, scrambled = scramble(params), scramble(permuted)
    match = get_search("weight_matching")
    weights_only = match(spec, params, permuted, generator=torch.Generator().manual_seed(0), statistics=False)
    assert _same(weights_only, invert(planted))
    assert _same(match(spec, params, scrambled, generator=torch.Generator().manual_seed(0), statistics=False),
                 weights_only)
    with_statistics = match(spec, params, scrambled, generator=torch.Generator().manual_seed(0))
    assert not _same(with_statistics, weights_only)  # the scrambled statistics outweigh the weights


def _solve_every_time(spec, a, b, generator: torch.Generator) -> dict:
    """Weight matching as Git Re-Basin writes it: every permutation solved in every sweep, scipy maximising; a
    heads group's members solved together (best whole-head order of the per-head optima)."""
    from permlmc.search.weight_matching import _similarity

    perm = identity(spec, b)
    for _ in range(100):
        improved = False
        for index in torch.randperm(len(spec.names), generator=generator).tolist():
            group = spec.group_of(spec.names[index])
            members = (spec.names[index],) if group is None else group.members
            sims = [_similarity(spec, perm, a, b, name, True) for name in members]
            found = _maximise(sims, 1 if group is None else group.head_size)
            rows = range(len(sims[0]))
            old = sum(sim[rows, perm[name].numpy()].sum() for sim, name in zip(sims, members, strict=True))
            new = sum(sim[rows, cols].sum() for sim, cols in zip(sims, found, strict=True))
            if new > old + 1e-12 * max(1.0, abs(old)):
                perm.update({name: torch.as_tensor(cols, dtype=torch.int64)
                             for name, cols in zip(members, found, strict=True)})
                improved = True
        if not improved:
            return perm
    return perm


def _maximise(sims: list, block: int) -> list:
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    if block == 1:  # heads of one unit: the per-head solves below are trivial, the whole-head order is all
        _, order = linear_sum_assignment(sum(sims), maximize=True)
        return [order for _ in sims]
    heads = len(sims[0]) // block
    inner = {(m, h, g): linear_sum_assignment(sim[h * block:(h + 1) * block, g * block:(g + 1) * block],
                                             maximize=True)[1]
             for m, sim in enumerate(sims) for h in range(heads) for g in range(heads)}
    value = np.array([[sum(sim[h * block + np.arange(block), g * block + inner[m, h, g]].sum()
                           for m, sim in enumerate(sims)) for g in range(heads)] for h in range(heads)])
    _, order = linear_sum_assignment(value, maximize=True)
    return [np.concatenate([order[h] * block + inner[m, h, order[h]] for h in range(heads)]) for m in range(len(sims))]


def _neighbour_graph(arch: Architecture) -> dict[str, tuple[str, ...]]:
    spec = permutation_spec(arch)
    return {name: neighbours(spec, name) for name in spec.names}


@pytest.mark.parametrize("arch", [a for a in small_architectures() if a.norm is not None and a.model_name != a.family],
                         ids=lambda a: a.name)
def test_a_norm_variant_has_its_familys_neighbour_graph(arch: Architecture) -> None:
    """A normalisation adds entries on one axis only, never a neighbour: the skipping below depends on the graph
    alone, so the family's default norm stands for its variants there."""
    default = Architecture(arch.family, arch.depth, arch.width, arch.input_shape, arch.num_classes)
    assert _neighbour_graph(arch) == _neighbour_graph(default)


@pytest.mark.parametrize("arch", [a for a in small_architectures() if a.model_name == a.family], ids=lambda a: a.name)
def test_weight_matching_skips_only_solves_whose_matrix_is_unchanged(arch: Architecture) -> None:
    """Two unrelated networks (no planted answer: many sweeps, many changes): skipping the permutations whose
    neighbours did not change, and solving with shifted columns, finds what solving everything every time finds
    (every family at each example depth; its norm variants share its neighbour graph, tested above)."""
    _, params_a, spec = _setup(arch, seed=0)
    _, params_b, _ = _setup(arch, seed=1)
    found = get_search("weight_matching")(spec, params_a, params_b, generator=torch.Generator().manual_seed(3))
    assert _same(found, _solve_every_time(spec, params_a, params_b, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("name", sorted(TRACED))
def test_weight_matching_skips_only_unchanged_solves_on_derived_specs(name: str) -> None:
    """The same on specs with pieces (concatenations, flattens, attention heads), whose neighbours sit in pieces."""
    cls, shape = TRACED[name]
    torch.manual_seed(0)
    a, b = cls(), cls()
    spec = derive_spec(a, torch.randn(*shape)).spec
    params_a, params_b = a.state_dict(), b.state_dict()
    found = get_search("weight_matching")(spec, params_a, params_b, generator=torch.Generator().manual_seed(3))
    assert _same(found, _solve_every_time(spec, params_a, params_b, torch.Generator().manual_seed(3)))


def test_weight_matching_counts_a_permutation_on_two_axes_of_one_entry_as_its_own_neighbour() -> None:
    """A square entry permuted on both axes by one permutation (a recurrent weight): its matrix changes with its own
    solve, so the next sweep must solve it again."""
    g = torch.Generator().manual_seed(0)
    spec = PermutationSpec({"w": ("P", "P"), "v": ("Q", "P"), "u": (None, "Q")})
    a = {"w": torch.randn(7, 7, generator=g), "v": torch.randn(5, 7, generator=g), "u": torch.randn(3, 5, generator=g)}
    b = {k: torch.randn(v.shape, generator=g) for k, v in a.items()}
    assert neighbours(spec, "P") == ("P", "Q") and neighbours(spec, "Q") == ("P",)
    for seed in range(10):
        found = get_search("weight_matching")(spec, a, b, generator=torch.Generator().manual_seed(seed))
        assert _same(found, _solve_every_time(spec, a, b, torch.Generator().manual_seed(seed)))


def test_best_assignment_is_the_optimum_and_needs_a_square_matrix() -> None:
    import itertools

    import numpy as np

    from permlmc.search.assignment import best_assignment

    rng = np.random.default_rng(0)
    for _ in range(20):
        sim = rng.normal(size=(6, 6)) + 5 * np.outer(rng.uniform(size=6), rng.uniform(size=6))  # rank-1: near ties
        best = max(itertools.permutations(range(6)), key=lambda cols: sim[range(6), list(cols)].sum())
        assert list(best_assignment(sim)) == list(best)
    with pytest.raises(ValueError, match="square"):
        best_assignment(np.zeros((3, 4)))


def test_layout_lists_every_axis_a_permutation_acts_on() -> None:
    spec = PermutationSpec({**dense("l0", None, "P0"), **dense("l1", "P0", None)})
    assert permutation_layout(spec) == {"P0": [["l0.weight", 0], ["l0.bias", 0], ["l1.weight", 1]]}


def test_validate_rejects_missing_keys_and_inconsistent_sizes() -> None:
    spec = PermutationSpec({**dense("l0", None, "P0"), **dense("l1", "P0", None)})
    good = {"l0.weight": torch.zeros(4, 3), "l0.bias": torch.zeros(4), "l1.weight": torch.zeros(2, 4),
            "l1.bias": torch.zeros(2)}
    spec.validate(good)
    with pytest.raises(SpecError, match="l1.bias"):
        spec.validate({k: v for k, v in good.items() if k != "l1.bias"})
    with pytest.raises(SpecError, match="P0"):
        spec.validate({**good, "l1.weight": torch.zeros(2, 5)})


def test_check_permutation_rejects_wrong_sizes_and_non_permutations() -> None:
    arch = Architecture("mlp", 1, 4, (1, 2, 2), 3)
    params = build_model(arch).state_dict()
    spec = permutation_spec(arch)
    spec.check_permutation({"hidden.0": torch.tensor([3, 1, 0, 2])}, params)
    with pytest.raises(SpecError, match="range\\(4\\)"):
        spec.check_permutation({"hidden.0": torch.tensor([0, 1, 2])}, params)
    with pytest.raises(SpecError, match="range\\(4\\)"):
        spec.check_permutation({"hidden.0": torch.tensor([0, 0, 1, 2])}, params)
    with pytest.raises(SpecError, match="names"):
        spec.check_permutation({"other": torch.arange(4)}, params)


def _attention_spec(block: int = 2) -> tuple[PermutationSpec, dict]:
    """Query/key and value/output of one attention layer with 3 heads: the heads group of a transformer."""
    g = torch.Generator().manual_seed(0)
    spec = PermutationSpec({"q": ("qk", None), "k": ("qk", None), "v": ("vo", "r"), "o": ("r", "vo")},
                           heads=(Heads(("qk", "vo"), block),))
    n = 3 * block
    return spec, {"q": torch.randn(n, 4, generator=g), "k": torch.randn(n, 4, generator=g),
                  "v": torch.randn(n, 5, generator=g), "o": torch.randn(5, n, generator=g)}


def test_heads_groups_accept_only_whole_heads_moved_alike() -> None:
    spec, params = _attention_spec()
    drawn = random_permutation(spec, params, torch.Generator().manual_seed(0))
    spec.check_permutation(drawn, params)
    swap_in_head = {"qk": torch.tensor([1, 0, 2, 3, 4, 5]), "vo": torch.arange(6), "r": torch.arange(5)}
    spec.check_permutation(swap_in_head, params)
    with pytest.raises(SpecError, match="whole heads"):  # a unit leaves its head
        spec.check_permutation({**swap_in_head, "qk": torch.tensor([2, 1, 0, 3, 4, 5])}, params)
    with pytest.raises(SpecError, match="same order"):  # heads moved in one member only
        spec.check_permutation({**swap_in_head, "qk": torch.tensor([2, 3, 0, 1, 4, 5])}, params)
    with pytest.raises(SpecError, match="multiple of its head size"):
        PermutationSpec(spec.axes, heads=(Heads(("qk", "vo"), 4),)).validate(params)
    with pytest.raises(SpecError, match="heads groups"):
        PermutationSpec(spec.axes, heads=(Heads(("qk", "nowhere"), 2),))


def test_best_head_assignment_is_the_optimum_over_whole_head_moves() -> None:
    import itertools

    import numpy as np

    from permlmc.search.assignment import best_head_assignment

    rng = np.random.default_rng(0)
    within = list(itertools.permutations(range(2)))
    for _ in range(10):
        sims = [rng.normal(size=(6, 6)) for _ in range(2)]
        candidates = [[np.concatenate([order[h] * 2 + np.array(w[h]) for h in range(3)]) for w in ws]
                      for order in itertools.permutations(range(3))
                      for ws in itertools.product(itertools.product(within, repeat=3), repeat=2)]
        best = max(candidates, key=lambda cols: sum(s[range(6), c].sum() for s, c in zip(sims, cols, strict=True)))
        found = best_head_assignment(sims, 2)
        assert [list(c) for c in found] == [list(c) for c in best]


def test_leave_in_place_removes_a_permutation_everywhere() -> None:
    spec, params = _attention_spec()
    kept = leave_in_place(spec, ["r"])
    assert kept.names == ("qk", "vo") and kept.axes["o"] == (None, "vo") and kept.heads == spec.heads
    assert leave_in_place(spec, ["qk", "vo"]).heads == () and leave_in_place(spec, ["qk", "vo"]).names == ("r",)
    with pytest.raises(SpecError, match="rest of their heads group"):  # vo alone would still move heads
        leave_in_place(spec, ["qk"])
    with pytest.raises(SpecError, match="nowhere"):
        leave_in_place(spec, ["nowhere"])


def test_vit_residual_mode_internal_leaves_the_stream_in_place() -> None:
    arch = Architecture("vit", 2, 8, (1, 8, 8), 10)
    full, internal = permutation_spec(arch, "full"), permutation_spec(arch, "internal")
    assert internal == leave_in_place(full, ["residual"])


def test_weight_matching_restarts_keep_the_ascent_of_largest_total_similarity() -> None:
    """Restarts run the ascent again in new random orders from one generator; the kept result is the best one by
    total similarity, and one restart is the plain ascent."""
    from permlmc.search.weight_matching import match, total_similarity

    arch = Architecture("vit", 2, 8, (1, 8, 8), 10)
    _, params_a, spec = _setup(arch, seed=0)
    _, params_b, _ = _setup(arch, seed=1)
    search = get_search("weight_matching")
    plain = search(spec, params_a, params_b, generator=torch.Generator().manual_seed(3))
    assert _same(search(spec, params_a, params_b, generator=torch.Generator().manual_seed(3), restarts=1), plain)
    g = torch.Generator().manual_seed(3)
    ascents = [match(spec, params_a, params_b, identity(spec, params_b), generator=g) for _ in range(5)]
    totals = [total_similarity(spec, p, params_a, params_b, True) for p in ascents]
    assert len({round(t, 6) for t in totals}) > 1  # the orders reach different optima on unrelated networks
    kept = search(spec, params_a, params_b, generator=torch.Generator().manual_seed(3), restarts=5)
    assert _same(kept, ascents[totals.index(max(totals))])
    with pytest.raises(ValueError, match="restarts"):
        search(spec, params_a, params_b, generator=torch.Generator(), restarts=0)
