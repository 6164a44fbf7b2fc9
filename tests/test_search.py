"""Search algorithms: shared signature, planted problems, determinism."""

from __future__ import annotations

import pytest
import torch

from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, permutation_spec
from permlmc.permutation import apply_permutation, random_permutation
from permlmc.search import SEARCHES, SearchData, get_search
from permlmc.search.annealing.pairwise import MidpointEnergy
from permlmc.training.loop import initialise


def _planted(width: int = 12, seed: int = 0):
    arch = Architecture("mlp", 1, width, (1, 4, 4), 4)
    model = initialise(arch, seed)
    a = model.state_dict()
    spec = permutation_spec(arch)
    planted = random_permutation(spec, a, torch.Generator().manual_seed(seed + 1))
    b = apply_permutation(spec, planted, a)
    g = torch.Generator().manual_seed(seed + 2)
    x = torch.randn(400, 1, 4, 4, generator=g)
    y = model(x).argmax(1)  # labels the endpoints fit perfectly: the planted problem has energy 0
    return spec, a, b, SearchData(functional_forward(model), x, y)


def test_registry_and_unknown_method() -> None:
    assert {"none", "weight_matching", "sa"} <= set(SEARCHES)
    with pytest.raises(ValueError, match="bogus"):
        get_search("bogus")


def test_none_is_identity() -> None:
    spec, a, b, _ = _planted()
    perm = get_search("none")(spec, a, b, generator=torch.Generator())
    assert all(torch.equal(p, torch.arange(len(p))) for p in perm.values())


@pytest.mark.parametrize("metric", ["error", "loss"])
def test_sa_lowers_the_energy_on_a_planted_problem(metric: str) -> None:
    spec, a, b, data = _planted()
    energy = MidpointEnergy(spec, a, b, data, metric)
    start = energy({n: p.numpy() for n, p in get_search("none")(spec, a, b, generator=torch.Generator()).items()})
    trace: list[dict] = []
    found = get_search("sa")(spec, a, b, data=data, generator=torch.Generator().manual_seed(0), steps=1500,
                             metric=metric, progress=trace.append)
    end = energy({n: p.numpy() for n, p in found.items()})
    assert start > 0.05
    assert end < 0.5 * start
    assert trace[0]["event"] == "schedule" and trace[-1]["event"] == "done"
    # the MLP anneals on the incremental energy (float64 cache); `energy` recomputes it in float32
    assert trace[-1]["best_energy"] == pytest.approx(end, abs=1e-6)


def test_sa_is_deterministic_under_its_seed() -> None:
    spec, a, b, data = _planted()

    def run(seed: int) -> dict:
        return get_search("sa")(spec, a, b, data=data, generator=torch.Generator().manual_seed(seed), steps=200)

    first, second, other = run(7), run(7), run(8)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_sa_paper_schedule_and_option_errors() -> None:
    spec, a, b, data = _planted()
    trace: list[dict] = []
    get_search("sa")(spec, a, b, data=data, generator=torch.Generator(), schedule="paper", steps=20,
                     progress=trace.append)
    assert trace[0]["tmax"] == 25000 and trace[0]["tmin"] == 2.5
    with pytest.raises(ValueError, match="custom"):
        get_search("sa")(spec, a, b, data=data, generator=torch.Generator(), schedule="custom")
    with pytest.raises(ValueError, match="SearchData"):
        get_search("sa")(spec, a, b, generator=torch.Generator())
    with pytest.raises(TypeError, match="bogus"):
        get_search("weight_matching")(spec, a, b, generator=torch.Generator(), bogus=1)
