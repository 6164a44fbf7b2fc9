"""The temperature-scaled cross-entropy: invariant to rescaled logits, never above the raw loss, the minimum
over temperatures, and one temperature per network fitted on the training split."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from permlmc.temperature_scaling import fit_temperature, scaled_loss, temperature_scaled_losses


def _logits(n: int = 400, classes: int = 10, scale: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    z = torch.randn(n, classes, generator=g, dtype=torch.float64)
    z[torch.arange(n), y] += 1.5  # informative but not separable: a finite best temperature
    return z * scale, y


@pytest.mark.parametrize("scale", [0.05, 0.5, 3.0, 40.0])
def test_scaling_the_logits_leaves_the_temperature_scaled_loss_unchanged(scale: float) -> None:
    z, y = _logits()
    reference = scaled_loss(z, y, fit_temperature(z, y))
    scaled = z * scale
    t = fit_temperature(scaled, y)
    assert t == pytest.approx(scale * fit_temperature(z, y), rel=1e-4)
    assert scaled_loss(scaled, y, t) == pytest.approx(reference, abs=1e-9)
    assert scaled_loss(scaled, y, 1.0) != pytest.approx(reference, abs=1e-3)  # the raw loss does change


def test_the_fit_is_the_minimum_over_a_grid_and_never_above_the_raw_loss() -> None:
    z, y = _logits(scale=4.0)  # over-confident: the best temperature is above 1
    t = fit_temperature(z, y)
    best = scaled_loss(z, y, t)
    grid = [math.exp(u / 100) for u in range(-400, 401)]
    assert best <= min(scaled_loss(z, y, g) for g in grid) + 1e-9
    assert best < scaled_loss(z, y, 1.0)
    assert scaled_loss(z.float(), y, 1.0) == pytest.approx(float(F.cross_entropy(z, y)), rel=1e-6)


def test_other_splits_use_the_temperature_fitted_on_the_fitting_split() -> None:
    train, test = _logits(seed=0, scale=3.0), _logits(seed=1, scale=3.0)
    t, losses = temperature_scaled_losses({"train": train, "test": test}, fit="train")
    assert t == pytest.approx(fit_temperature(*train))
    assert losses["test"] == pytest.approx(scaled_loss(*test, t))
    assert losses["test"] >= scaled_loss(*test, fit_temperature(*test)) - 1e-12  # not refitted on test
    with pytest.raises(ValueError, match="'valid'"):
        temperature_scaled_losses({"train": train}, fit="valid")


def test_a_temperature_scaled_curve_adds_its_loss_at_every_point() -> None:
    from permlmc.evaluation import functional_forward, logits_of
    from permlmc.interpolation.path import interpolation_curve
    from permlmc.models import Architecture, build_model
    from permlmc.training.loop import initialise

    arch = Architecture("mlp", 1, 8, (1, 4, 4), 3)
    model = build_model(arch)
    a, b = (dict(initialise(arch, seed).state_dict()) for seed in (1, 2))
    g = torch.Generator().manual_seed(0)
    splits = {split: (torch.randn(60, 1, 4, 4, generator=g), torch.randint(0, 3, (60,), generator=g))
              for split in ("train", "test")}
    alphas = [0.0, 0.5, 1.0]
    plain = interpolation_curve(model, a, b, alphas, splits)
    points = interpolation_curve(model, a, b, alphas, splits, temperature_split="train")
    assert points[: len(plain)] == plain  # the raw points are unchanged
    scaled = {(p.alpha, p.split): p.value for p in points if p.metric == "loss_temperature_scaled"}
    assert set(scaled) == {(alpha, split) for alpha in alphas for split in splits}
    raw = {(p.alpha, p.split): p.value for p in plain if p.metric == "loss"}
    assert all(scaled[(alpha, "train")] <= raw[(alpha, "train")] + 1e-6 for alpha in alphas)
    z = logits_of(functional_forward(model), a, splits["train"][0])
    _, direct = temperature_scaled_losses({"train": (z, splits["train"][1])}, fit="train")
    assert scaled[(0.0, "train")] == pytest.approx(direct["train"], abs=1e-6)
