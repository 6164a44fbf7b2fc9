"""BatchNorm along the interpolation path: reset and REPAIR."""

from __future__ import annotations

import pytest
import torch

from permlmc.evaluation import functional_forward
from permlmc.interpolation.batchnorm import batchnorm_layers, output_statistics, repair_targets
from permlmc.interpolation.path import PathSampler, interpolation_curve
from permlmc.models import Architecture, build_model
from permlmc.training.loop import initialise

# 16x16 inputs and batches of 256 keep batch statistics (used while re-estimating) close to pooled ones
ARCHS = [Architecture("vgg", 11, 6, (1, 16, 16), 10), Architecture("resnet", 18, 6, (1, 16, 16), 10)]


def _trained_looking(arch: Architecture, seed: int) -> dict[str, torch.Tensor]:
    """Initial weights with non-trivial BatchNorm affine maps and running statistics."""
    g = torch.Generator().manual_seed(seed)
    model = initialise(arch, seed)
    params = model.state_dict()
    for name, layer in batchnorm_layers(model):
        n = layer.num_features
        params[f"{name}.weight"] = 0.5 + torch.rand(n, generator=g)
        params[f"{name}.bias"] = 0.3 * torch.randn(n, generator=g)
        params[f"{name}.running_mean"] = 0.3 * torch.randn(n, generator=g)
        params[f"{name}.running_var"] = 0.5 + torch.rand(n, generator=g)
    return params


def _batches(n: int = 4, size: int = 256) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(size, 1, 16, 16, generator=g) for _ in range(n)]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_reset_gives_the_statistics_of_the_data(arch: Architecture) -> None:
    model = build_model(arch)
    params = _trained_looking(arch, 0)
    batches = _batches()
    reset = PathSampler(model, params, params, "reset", batches)(0.0)
    # After reset, a BN layer standardises its input on these batches: output mean = bias, std = |weight|.
    # Exact for the first layer; later layers see inputs computed with batch statistics while estimating, so
    # they only get much closer than the stale statistics were.
    before = output_statistics(model, params, batches)
    after = output_statistics(model, reset, batches)
    first = batchnorm_layers(model)[0][0]
    torch.testing.assert_close(after[first][0], reset[f"{first}.bias"], atol=1e-4, rtol=0)
    torch.testing.assert_close(after[first][1], reset[f"{first}.weight"], atol=0, rtol=2e-2)
    for name in after:
        stale = (before[name][0] - params[f"{name}.bias"]).abs().mean()
        fresh = (after[name][0] - reset[f"{name}.bias"]).abs().mean()
        assert fresh < 0.25 * stale, name


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_repair_matches_interpolated_endpoint_statistics(arch: Architecture) -> None:
    model = build_model(arch)
    a, b = _trained_looking(arch, 0), _trained_looking(arch, 1)
    batches = _batches()
    stats_a, stats_b = output_statistics(model, a, batches), output_statistics(model, b, batches)
    target = {n: ((stats_a[n][0] + stats_b[n][0]) / 2, (stats_a[n][1] + stats_b[n][1]) / 2) for n in stats_a}
    plain = output_statistics(model, PathSampler(model, a, b, "interpolate")(0.5), batches)
    repaired = output_statistics(model, PathSampler(model, a, b, "repair", batches)(0.5), batches)
    first = batchnorm_layers(model)[0][0]
    torch.testing.assert_close(repaired[first][0], target[first][0], atol=1e-4, rtol=0)
    torch.testing.assert_close(repaired[first][1], target[first][1], atol=0, rtol=2e-2)
    # deeper layers: statistics estimated with batch statistics upstream, so close, not exact
    for moment in (0, 1):
        error = sum(float((repaired[n][moment] - target[n][moment]).abs().mean()) for n in target)
        error_plain = sum(float((plain[n][moment] - target[n][moment]).abs().mean()) for n in target)
        assert error < 0.25 * error_plain


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_repair_targets_of_stacked_networks_are_each_networks_own(arch: Architecture) -> None:
    """A column of K alphas gives each stacked network the targets its own alpha gives it alone: the same elementwise
    interpolation, so equal to the bit."""
    model = build_model(arch)
    a, b = _trained_looking(arch, 0), _trained_looking(arch, 1)
    batches = _batches()
    stats_a, stats_b = output_statistics(model, a, batches), output_statistics(model, b, batches)
    alphas = [0.0, 0.3, 0.5, 1.0]
    stacked = {k: torch.stack([v] * len(alphas)) for k, v in a.items()}
    column = repair_targets(model, stacked, stats_a, stats_b, torch.tensor(alphas)[:, None])
    for k, alpha in enumerate(alphas):
        alone = repair_targets(model, a, stats_a, stats_b, alpha)
        assert all(torch.equal(column[key][k], alone[key]) for key in alone), alpha
    with pytest.raises(ValueError, match=r"\(K, 1\) column"):
        repair_targets(model, stacked, stats_a, stats_b, torch.tensor(alphas))


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_repair_leaves_an_endpoint_unchanged(arch: Architecture) -> None:
    model = build_model(arch)
    a, b = _trained_looking(arch, 0), _trained_looking(arch, 1)
    batches = _batches()
    repaired = PathSampler(model, a, b, "repair", batches)(0.0)
    forward = functional_forward(model)
    # A repaired towards its own statistics stays (nearly) the same function
    reference = forward(a, batches[0])
    assert float((forward(repaired, batches[0]) - reference).abs().max()) < 0.05 * float(reference.abs().max())


def test_curve_under_every_mode_and_errors() -> None:
    arch = ARCHS[0]
    model = build_model(arch)
    a = _trained_looking(arch, 0)
    x, y = _batches(1)[0], torch.randint(0, 10, (256,))
    for mode in ("interpolate", "reset", "repair"):
        points = interpolation_curve(model, a, a, [0.0, 0.5, 1.0], {"train": (x, y)}, bn_mode=mode,
                                     batches=_batches())
        assert len(points) == 6
    mlp = build_model(Architecture("mlp", 1, 4, (1, 8, 8), 10))
    assert not batchnorm_layers(mlp)
    with pytest.raises(ValueError, match="BatchNorm"):
        PathSampler(mlp, mlp.state_dict(), mlp.state_dict(), "reset", _batches())
    with pytest.raises(ValueError, match="bogus"):
        PathSampler(model, a, a, "bogus")
    with pytest.raises(ValueError, match="batches"):
        PathSampler(model, a, a, "repair")
