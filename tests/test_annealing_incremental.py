"""The incremental SA energy of dense chains (MLPs) against the full recomputation it replaces.

Float note: the cache accumulates in float64 while the full path runs the network in float32, so the two logits
differ by float32 rounding (~1e-6). The loss therefore agrees to ~1e-6; the error agrees exactly except on an
example whose two top logits are within rounding of each other, where the two paths may pick different classes.
The checks below allow exactly that and nothing more.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from permlmc.evaluation import functional_forward, measure
from permlmc.models import Architecture, permutation_spec
from permlmc.search import SearchData, get_search
from permlmc.search.annealing.energy import MidpointEnergy, State
from permlmc.search.annealing.incremental import ChainMidpointEnergy, dense_chain
from permlmc.search.annealing.pairwise import IncrementalAnnealer, calibrate, midpoint_energy
from permlmc.training.loop import initialise

TIE = 1e-4
"""Top-two logit gap (relative to the largest logit) below which the two paths may classify differently."""
LOSS_TOLERANCE = 1e-5


def _pair(arch: Architecture, examples: int = 600):
    a, b = initialise(arch, 0), initialise(arch, 1)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(examples, *arch.input_shape, generator=g)
    with torch.no_grad():
        noise = torch.randint(0, 10, (examples,), generator=g)
        y = torch.where(torch.rand(examples, generator=g) < 0.8, a(x).argmax(1), noise)
    return permutation_spec(arch), a.state_dict(), b.state_dict(), SearchData(functional_forward(a), x, y)


def _mlp(depth: int) -> Architecture:
    return Architecture("mlp", depth, 16, (1, 8, 8), 10)


pytestmark = pytest.mark.usefixtures("one_thread")


def _assert_same_energy(value: float, full: MidpointEnergy, state: State, cached: torch.Tensor | None) -> None:
    """``value`` is the full energy of ``state``: to ~1e-6 for the loss; for the error, exactly but for examples on
    a float tie (each may move the error by 1/N). With the cache's logits (classes, N), also check per example."""
    if full.metric == "loss":
        assert value == pytest.approx(full(state), abs=LOSS_TOLERANCE)
        return
    with torch.no_grad():
        logits = full.data.forward(full.midpoint(state), full.data.x)  # (N, classes), as full(state) computes
    expected = float(measure(logits, full.data.y, full.metric)) - full.endpoint_mean
    top2 = logits.topk(2, dim=1).values
    tied = (top2[:, 0] - top2[:, 1]) <= TIE * (1 + logits.abs().max())
    if cached is not None:
        differ = cached.argmax(0) != logits.argmax(1)
        assert not (differ & ~tied).any(), "the paths classify an example differently without a float tie"
    assert abs(value - expected) <= int(tied.sum()) / len(logits) + 1e-12


class _Audited(IncrementalAnnealer):
    """Checks the cache against the full energy after every settle and every proposal."""

    def __init__(self, state: State, chain: ChainMidpointEnergy, full: MidpointEnergy) -> None:
        super().__init__(state, chain, np.random.default_rng(5), None)
        self.full, self.outcomes = full, {"accepted": 0, "rejected": 0}

    def _settle(self) -> None:
        if self._moved is not None:
            self.outcomes["accepted" if self.state is self._moved else "rejected"] += 1
        super()._settle()
        _assert_same_energy(self._chain.value, self.full, self.state, self._chain.logits())

    def move(self) -> float:
        delta = super().move()
        _assert_same_energy(self._chain.value + delta, self.full, self.state, None)
        return delta


@pytest.mark.parametrize("metric", ["error", "loss"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cached_energy_matches_full_recomputation_along_a_run(depth: int, metric: str) -> None:
    spec, a, b, data = _pair(_mlp(depth))
    chain = midpoint_energy(spec, a, b, data, metric, "incremental")
    full = midpoint_energy(spec, a, b, data, metric, "full")
    assert isinstance(chain, ChainMidpointEnergy) and not isinstance(full, ChainMidpointEnergy)
    state = {name: np.arange(n) for name, n in spec.sizes(a).items()}
    tmax, tmin = calibrate(chain, state, np.random.default_rng(4), 32)
    resets = 0
    rebuild = chain.reset

    def counted(s: State) -> float:
        nonlocal resets
        resets += 1
        return rebuild(s)

    chain.reset = counted  # type: ignore[method-assign]
    annealer = _Audited(state, chain, full)
    annealer.set_schedule({"tmax": tmax, "tmin": tmin, "steps": 300, "updates": 0})
    saved = random.getstate()
    random.seed(6)
    try:
        best, best_energy = annealer.anneal()
    finally:
        random.setstate(saved)
    assert resets == 0, "simanneal's accept/reject was not followed without rebuilding the cache"
    assert annealer.outcomes["accepted"] > 10 and annealer.outcomes["rejected"] > 10, annealer.outcomes
    assert best_energy == pytest.approx(full(best), abs=LOSS_TOLERANCE)


@pytest.mark.parametrize("metric", ["error", "loss"])
@pytest.mark.parametrize("depth", [1, 2])
def test_incremental_and_full_paths_find_the_same_permutation(depth: int, metric: str) -> None:
    """Same seed: same moves, same acceptance draws. With the error, both paths see the same energies (multiples
    of 1/N; no float ties here), hence the same calibrated schedule, decisions and result. With the loss, the
    full path's float32 rounding moves each energy by ~1e-7: enough to shift the calibrated ``tmin`` (the
    smallest uphill change) by percents, so that run uses a fixed schedule whose temperatures (>= 1e-3) make a
    rounding-sized change of dE flip an acceptance test with probability ~1e-4 per test; the traces must then
    agree at every step."""
    spec, a, b, data = _pair(_mlp(depth))
    schedule = {"schedule": "calibrated"} if metric == "error" else {"schedule": "custom", "tmax": 0.02, "tmin": 1e-3}
    found, traces = {}, {}
    for kind in ("full", "incremental"):
        traces[kind] = []
        found[kind] = get_search("sa")(spec, a, b, data=data, generator=torch.Generator().manual_seed(3), steps=300,
                                       metric=metric, energy=kind, updates=300, progress=traces[kind].append,
                                       **schedule)
    assert traces["full"][0]["energy"] == "full" and traces["incremental"][0]["energy"] == "incremental"
    assert all(torch.equal(found["full"][k], found["incremental"][k]) for k in found["full"])
    steps = [[t for t in traces[kind] if t["event"] == "step"] for kind in ("full", "incremental")]
    assert len(steps[0]) == 301
    tolerance = 1e-12 if metric == "error" else LOSS_TOLERANCE
    for full, incremental in zip(*steps, strict=True):
        for key in ("energy", "best_energy", "acceptance"):
            assert incremental[key] == pytest.approx(full[key], abs=tolerance)
    assert not all(torch.equal(p, torch.arange(len(p))) for p in found["full"].values())


def test_auto_picks_incremental_for_mlps() -> None:
    spec, a, b, data = _pair(_mlp(2))
    trace: list[dict] = []
    get_search("sa")(spec, a, b, data=data, generator=torch.Generator(), steps=5, progress=trace.append)
    assert trace[0]["energy"] == "incremental"


def test_only_dense_chains_are_detected(arch: Architecture) -> None:  # every registered family (conftest)
    params = initialise(arch, 0).state_dict()
    layers = dense_chain(permutation_spec(arch), params)
    if arch.model_name == "mlp":
        assert layers is not None and [layer.weight for layer in layers] == [
            *(f"hidden.{i}.weight" for i in range(arch.depth)), "head.weight"]
    else:
        assert layers is None


def test_cnn_falls_back_to_full() -> None:
    spec, a, b, data = _pair(Architecture("cnn", 2, 4, (1, 8, 8), 10), examples=64)
    assert type(midpoint_energy(spec, a, b, data, "error")) is MidpointEnergy
    with pytest.raises(ValueError, match="not a chain"):
        midpoint_energy(spec, a, b, data, "error", "incremental")
    trace: list[dict] = []
    get_search("sa")(spec, a, b, data=data, generator=torch.Generator(), steps=3, progress=trace.append)
    assert trace[0]["energy"] == "full"
    with pytest.raises(ValueError, match="bogus"):
        midpoint_energy(spec, a, b, data, "error", "bogus")


def test_a_chain_spec_with_another_activation_falls_back_to_full() -> None:
    """The spec alone cannot tell a ReLU MLP from, say, a tanh one: the forward-pass check does."""
    spec, a, b, data = _pair(_mlp(1), examples=64)

    def tanh_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x.flatten(1) @ params["hidden.0.weight"].T + params["hidden.0.bias"])
        return h @ params["head.weight"].T + params["head.bias"]

    tanh = SearchData(tanh_forward, data.x, data.y)
    assert type(midpoint_energy(spec, a, b, tanh, "loss")) is MidpointEnergy
    with pytest.raises(ValueError, match="relu"):
        midpoint_energy(spec, a, b, tanh, "loss", "incremental")


def test_a_replaced_state_rebuilds_the_cache() -> None:
    spec, a, b, data = _pair(_mlp(2), examples=200)
    chain = midpoint_energy(spec, a, b, data, "loss", "incremental")
    full = midpoint_energy(spec, a, b, data, "loss", "full")
    assert isinstance(chain, ChainMidpointEnergy)
    annealer = IncrementalAnnealer({n: np.arange(k) for n, k in spec.sizes(a).items()}, chain,
                                    np.random.default_rng(0), None)
    annealer.move()
    other = {n: np.random.default_rng(1).permutation(k) for n, k in spec.sizes(a).items()}
    annealer.state = other  # neither the moved state nor a copy of the previous one
    assert annealer.energy() == pytest.approx(full(other), abs=LOSS_TOLERANCE)
    with pytest.raises(RuntimeError, match="proposal"):
        chain.commit()
