"""Activation matching, functional difference and brute force: planted permutations over every registered model,
unit features against a hand computation, and brute force against an independent check of its energy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from tests.conftest import INPUT_SHAPE, small_architectures
from tests.rounding import magnitude, rounding_tolerance, to_float64
from torch.func import functional_call, vmap

from permlmc.evaluation import functional_forward
from permlmc.interpolation.batchnorm import reset_statistics
from permlmc.models import RESIDUAL_MODES, Architecture, build_model, permutation_spec
from permlmc.permutation import apply_permutation, invert, random_permutation
from permlmc.search import REQUIRES, SEARCHES, SearchData, get_search
from permlmc.search.annealing.energy import MidpointEnergy
from permlmc.search.brute_force import midpoints_stacked
from permlmc.search.features import moments, unit_features, writers
from permlmc.search.functional_difference import greedy_matching
from permlmc.training.loop import initialise

MATCHERS = ("activation_matching", "functional_difference")


def _centred(model: torch.nn.Module, spec, params: dict, x: torch.Tensor) -> dict:
    """``params`` with every module writing a permutation (and having a bias) standardised, in forward order: each
    unit's output over ``x`` (positions as samples) gets median 0 and standard deviation 1, by scaling its weight
    row and shifting its bias. Every unit is then active on half of ``x``, at the same scale in every layer (without
    a norm, activations of a deep random network shrink towards float rounding)."""
    params = dict(params)
    for path in writers(model, spec):
        if f"{path}.bias" not in params:
            continue
        seen: list[torch.Tensor] = []
        handle = dict(model.named_modules())[path].register_forward_hook(
            lambda _m, _i, out, seen=seen: seen.append(out))
        with torch.no_grad():
            functional_call(model, params, (x,))
        handle.remove()
        out = torch.cat([o.movedim(1, -1).reshape(-1, o.shape[1]) for o in seen])  # (samples, units)
        scale = out.std(0)
        weight = params[f"{path}.weight"]
        params[f"{path}.weight"] = weight / scale.view(-1, *[1] * (weight.dim() - 1))
        params[f"{path}.bias"] = (params[f"{path}.bias"] - out.median(0).values) / scale
    return params


def _live_network(arch: Architecture, residual: str, x: torch.Tensor):
    """A network whose every unit is active on part of ``x`` (a unit dead on all of ``x`` has no activations to
    match): with BatchNorm, biases raised by 1 and the statistics re-estimated on ``x``; without, every unit's
    output centred on ``x`` (:func:`_centred`)."""
    model = initialise(arch, 0).eval()
    spec = permutation_spec(arch, residual)
    if arch.norm not in (None, "bn"):
        return model, spec, _centred(model, spec, model.state_dict(), x)
    params = {k: v + 1 if k.endswith(".bias") and spec.axes[k][0] is not None else v
              for k, v in model.state_dict().items()}
    return model, spec, reset_statistics(model, params, [x])


def _cases() -> list[tuple[Architecture, str]]:
    """Every registered model; every residual mode for each ResNet (each normalisation: the streams differ)."""
    return [(arch, mode) for arch in small_architectures()
            for mode in (RESIDUAL_MODES if arch.family == "resnet" else ("full",))]


@pytest.mark.parametrize("method", MATCHERS)
@pytest.mark.parametrize(("arch", "residual"), _cases(), ids=lambda v: v.name if isinstance(v, Architecture) else v)
def test_matchers_recover_a_planted_permutation(arch: Architecture, residual: str, method: str) -> None:
    x = torch.randn(32, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    model, spec, a = _live_network(arch, residual, x)
    planted = random_permutation(spec, a, torch.Generator().manual_seed(1))
    assert any(not torch.equal(p, torch.arange(len(p))) for p in planted.values())
    b = apply_permutation(spec, planted, a)
    data = SearchData(functional_forward(model), x, torch.zeros(len(x), dtype=torch.int64), unit_features(model, spec))
    trace: list[dict] = []
    found = get_search(method)(spec, a, b, data=data, generator=torch.Generator(), progress=trace.append)
    truth = invert(planted)
    assert found.keys() == truth.keys() and all(torch.equal(found[k], truth[k]) for k in truth)
    restored = apply_permutation(spec, found, b)
    assert all(torch.equal(restored[k], a[k]) for k in a)
    assert {r["name"] for r in trace} == set(spec.names)


def test_features_of_an_mlp_are_its_hidden_relu_activations() -> None:
    arch = Architecture("mlp", 2, 5, (1, 3, 3), 4)
    model = initialise(arch, 0)
    params, spec = model.state_dict(), permutation_spec(arch)
    x = torch.randn(7, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    h0 = torch.relu(x.flatten(1) @ params["hidden.0.weight"].T + params["hidden.0.bias"])  # (7, 5)
    h1 = torch.relu(h0 @ params["hidden.1.weight"].T + params["hidden.1.bias"])
    features = unit_features(model, spec)(params, x)
    assert list(features) == ["hidden.0", "hidden.1"]
    torch.testing.assert_close(features["hidden.0"], h0)
    torch.testing.assert_close(features["hidden.1"], h1)
    assert not model._forward_hooks and not model.hidden[0]._forward_hooks  # hooks live only during a call


@pytest.mark.parametrize(("arch", "residual"), _cases(), ids=lambda v: v.name if isinstance(v, Architecture) else v)
def test_features_have_one_column_per_unit_and_spatial_positions_as_samples(arch: Architecture, residual: str) -> None:
    model = initialise(arch, 0)
    params, spec = model.state_dict(), permutation_spec(arch, residual)
    x = torch.randn(3, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    features = unit_features(model, spec)(params, x)
    sizes = spec.sizes(params)
    assert set(features) == set(sizes)
    for name, value in features.items():
        assert value.shape[1] == sizes[name] and value.shape[0] % len(x) == 0
        assert bool((value >= 0).all())  # post-activation
    if arch.model_name == "cnn":  # first conv: 8x8 map; its site is the conv itself
        assert features["convs.0"].shape == (3 * 8 * 8, arch.width)


def test_a_conv_and_its_batchnorm_are_one_site_a_projection_is_another() -> None:
    arch = Architecture("resnet", 18, 4, INPUT_SHAPE, 10)
    model = initialise(arch, 0)
    params, spec = model.state_dict(), permutation_spec(arch, "full")
    x = torch.randn(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    features = unit_features(model, spec)(params, x)
    # stream.0 (8x8): stem BN + the two stage-0 blocks' last BN; stream.1 (4x4): two blocks + one projection
    assert features["stream.0"].shape == (3 * 2 * 64, 4)
    assert features["stream.1"].shape == (3 * 2 * 16, 8)
    assert features["stages.0.0.conv1"].shape == (2 * 64, 4)


def test_moments_give_pearson_correlations() -> None:
    g = torch.Generator().manual_seed(0)
    fa, fb = torch.randn(50, 3, generator=g), torch.randn(50, 3, generator=g)
    stats = moments(lambda p, x: {"p": fa[x] if p["which"] == 0 else fb[x]}, {"which": torch.tensor(0)},
                    {"which": torch.tensor(1)}, torch.arange(50), batch_size=7)["p"]
    expected = np.corrcoef(fa.numpy().T, fb.numpy().T)[:3, 3:]
    np.testing.assert_allclose(stats.correlation().numpy(), expected, rtol=1e-6, atol=1e-9)
    assert stats.count == 50


def test_greedy_matching_takes_global_minima_in_turn() -> None:
    distance = torch.tensor([[1.0, 2.0, 9.0], [0.5, 8.0, 9.0], [3.0, 0.1, 7.0]])
    # 0.1 pairs (2, 1); then 0.5 pairs (1, 0); row 0 gets the last column — not the row-wise minimum
    assert greedy_matching(distance).tolist() == [2, 0, 1]
    assert greedy_matching(torch.zeros(3, 3)).tolist() == [0, 1, 2]  # ties: lowest row, then column


def test_matchers_need_features() -> None:
    arch = Architecture("mlp", 1, 3, (1, 2, 2), 2)
    model = initialise(arch, 0)
    params, spec = model.state_dict(), permutation_spec(arch)
    data = SearchData(functional_forward(model), torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int64))
    for method in MATCHERS:
        with pytest.raises(ValueError, match="features"):
            get_search(method)(spec, params, params, data=data, generator=torch.Generator())


def _small_pair(width: int, seed: int = 0):
    """Two independently initialised one-hidden-layer MLPs and 300 examples labelled by their ensemble."""
    arch = Architecture("mlp", 1, width, (1, 3, 3), 3)
    model_a, model_b = initialise(arch, seed), initialise(arch, seed + 1)
    x = torch.randn(300, 1, 3, 3, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = (model_a(x) + model_b(x)).argmax(1)
    return permutation_spec(arch), model_a.state_dict(), model_b.state_dict(), SearchData(
        functional_forward(model_a), x, y)


@pytest.mark.parametrize("metric", ["error", "loss"])
def test_brute_force_finds_the_minimum_of_the_sa_energy(metric: str) -> None:
    spec, a, b, data = _small_pair(5)
    trace: list[dict] = []
    found = get_search("brute_force")(spec, a, b, data=data, generator=torch.Generator(), metric=metric,
                                      progress=trace.append)
    energy = MidpointEnergy(spec, a, b, data, metric)
    # an independent check: the SA energy of every one of the 5! candidates, one forward pass each
    values = [energy({"hidden.0": np.array(p)}) for p in itertools.permutations(range(5))]
    best = energy({"hidden.0": found["hidden.0"].numpy()})
    assert best == pytest.approx(min(values), abs=1e-6)
    assert best < values[0]  # the search had something to find: the identity is not optimal here
    assert trace[-1]["event"] == "done" and trace[-1]["candidates"] == 120
    assert trace[-1]["best_energy"] == pytest.approx(best, abs=1e-6)
    assert values[trace[-1]["best_index"]] == pytest.approx(min(values), abs=1e-6)


def test_brute_force_beats_weight_matching_and_recovers_a_planted_permutation() -> None:
    spec, a, _, data = _small_pair(4, seed=3)
    # a confident A (loss near 0 on its own labels), so that no other midpoint can have a lower loss
    a = {k: v * 20 if k.startswith("head.") else v for k, v in a.items()}
    planted = random_permutation(spec, a, torch.Generator().manual_seed(0))
    b = apply_permutation(spec, planted, a)
    with torch.no_grad():
        data = SearchData(data.forward, data.x, data.forward(a, data.x).argmax(1))  # A and B fit the labels exactly
    found = get_search("brute_force")(spec, a, b, data=data, generator=torch.Generator(), metric="loss")
    assert torch.equal(found["hidden.0"], invert(planted)["hidden.0"])
    energy = MidpointEnergy(spec, a, b, data, "loss")
    wm = get_search("weight_matching")(spec, a, b, generator=torch.Generator())
    ident = get_search("none")(spec, a, b, generator=torch.Generator())
    mine = energy({k: v.numpy() for k, v in found.items()})
    assert mine <= energy({k: v.numpy() for k, v in wm.items()}) + 1e-6
    assert mine < energy({k: v.numpy() for k, v in ident.items()})


def test_brute_force_refuses_too_many_candidates() -> None:
    spec, a, b, data = _small_pair(5)
    with pytest.raises(ValueError, match=r"120 candidates.*'hidden.0': 5.*max_candidates=100"):
        get_search("brute_force")(spec, a, b, data=data, generator=torch.Generator(), max_candidates=100)
    spec9, a9, b9, data9 = _small_pair(9)
    with pytest.raises(ValueError, match=f"{math.factorial(9)} candidates.*max_candidates={math.factorial(8)}"):
        get_search("brute_force")(spec9, a9, b9, data=data9, generator=torch.Generator())
    with pytest.raises(ValueError, match="SearchData"):
        get_search("brute_force")(spec, a, b, generator=torch.Generator())


def test_every_method_says_what_data_it_needs() -> None:
    assert set(REQUIRES) == set(SEARCHES)
    fields = {"forward", "x", "y", "features"}
    assert all(set(needs) <= fields for needs in REQUIRES.values())
    assert REQUIRES["weight_matching"] == () and "features" in REQUIRES["activation_matching"]


def test_midpoints_stacked_match_the_sa_midpoint(arch: Architecture, batch: torch.Tensor) -> None:
    model_a, model_b = initialise(arch, 0), initialise(arch, 1)
    a, b, spec = model_a.state_dict(), model_b.state_dict(), permutation_spec(arch)
    a, b, batch = to_float64(a), to_float64(b), batch.double()  # float64: rounding far below another candidate
    forward = functional_forward(model_a)
    energy = MidpointEnergy(spec, a, b, SearchData(forward, batch, torch.zeros(len(batch), dtype=torch.int64)), "loss")
    perms = [random_permutation(spec, a, torch.Generator().manual_seed(i)) for i in range(2)]
    stacked = midpoints_stacked(spec, energy.half_a, energy.half_b,
                                {n: torch.stack([p[n] for p in perms]) for n in spec.names})  # (2, ...) each
    logits = vmap(lambda params: forward(params, batch))(stacked)  # (2, N, classes)
    # vmapped against single forwards: rounding only, tau = L sqrt(n) eps64 of the largest logit (tests/rounding.py)
    tau = rounding_tolerance(model_a, arch.input_shape, rows=len(batch), dtype=torch.float64)
    for k, perm in enumerate(perms):
        midpoint = energy.midpoint({n: p.numpy() for n, p in perm.items()})
        assert all(torch.equal(stacked[key][k], midpoint[key]) for key in midpoint)
        expected = forward(midpoint, batch)
        torch.testing.assert_close(logits[k], expected, rtol=0, atol=tau * magnitude(expected))


def test_functional_difference_weighs_the_input_layer_by_the_data_second_moment() -> None:
    from permlmc.search.functional_difference import input_hessian

    g = torch.Generator().manual_seed(0)
    mlp = Architecture("mlp", 2, 5, (1, 3, 2), 4)
    params = build_model(mlp).state_dict()
    x = torch.randn(50, 1, 3, 2, generator=g)
    key, moment = input_hessian(permutation_spec(mlp), params, x)
    flat = x.flatten(1).double()
    assert key == "hidden.0.weight"
    torch.testing.assert_close(moment, flat.T @ flat / 50)
    cnn = Architecture("cnn", 2, 4, (3, 8, 8), 4)
    images = torch.randn(20, 3, 8, 8, generator=g)
    key, moment = input_hessian(permutation_spec(cnn), build_model(cnn).state_dict(), images)
    pixels = images.movedim(1, -1).reshape(-1, 3).double()
    assert moment.shape == (3, 3)
    torch.testing.assert_close(moment, pixels.T @ pixels / len(pixels))
