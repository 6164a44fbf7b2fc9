"""Eq. 1 barriers from curves: known values, self-barrier zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from permlmc.barrier import barrier, midpoint_barrier
from permlmc.interpolation.path import interpolate, interpolation_curve
from permlmc.models import Architecture
from permlmc.training.loop import initialise


def test_hand_made_bump_has_its_known_height() -> None:
    alphas = np.linspace(0, 1, 11)
    # endpoints 0.2 and 0.6, a bump of 0.3 over the line at alpha = 0.3
    values = 0.2 + 0.4 * alphas
    values[3] += 0.3
    values[5] += 0.1
    assert barrier(alphas, values) == pytest.approx(0.3)
    assert midpoint_barrier(alphas, values) == pytest.approx(0.1)


def test_linear_change_has_no_barrier_and_dips_count_as_zero() -> None:
    alphas = np.linspace(0, 1, 5)
    assert barrier(alphas, 1 - alphas) == pytest.approx(0.0)
    assert barrier(alphas, [1.0, 0.2, 0.1, 0.2, 1.0]) == pytest.approx(0.0)
    assert midpoint_barrier(alphas, [1.0, 0.2, 0.1, 0.2, 1.0]) == pytest.approx(-0.9)


def test_grid_must_hold_endpoints_and_midpoint() -> None:
    with pytest.raises(ValueError, match="endpoints"):
        barrier([0.1, 0.5, 1.0], [0, 0, 0])
    with pytest.raises(ValueError, match="1/2"):
        midpoint_barrier([0.0, 0.4, 1.0], [0, 0, 0])


def test_barrier_of_a_model_with_itself_is_zero() -> None:
    arch = Architecture("mlp", 2, 8, (1, 4, 4), 3)
    model = initialise(arch, 0)
    params = model.state_dict()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    alphas = list(np.linspace(0, 1, 5))
    points = interpolation_curve(model, params, params, alphas, {"train": (x, y)})
    assert len(points) == 5 * 2
    for metric in ("loss", "error"):
        values = [p.value for p in points if p.metric == metric]
        assert barrier(alphas, values) == pytest.approx(0.0, abs=1e-6)


def test_interpolate_endpoints_and_midpoint() -> None:
    a = {"w": torch.zeros(3), "n": torch.tensor(5)}
    b = {"w": torch.ones(3), "n": torch.tensor(9)}
    assert torch.equal(interpolate(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate(a, b, 1.0)["w"], b["w"])
    assert torch.equal(interpolate(a, b, 0.5)["w"], torch.full((3,), 0.5))
    assert int(interpolate(a, b, 0.5)["n"]) == 5
