"""Output ensembles, weight averages and learned lines (App. C, Table 3) on a tiny MLP and a tiny BatchNorm net."""

from __future__ import annotations

import pytest
import torch

from permlmc.evaluation import evaluate, functional_forward, max_logit_difference
from permlmc.interpolation.path import interpolate
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.permutation import apply_permutation, random_permutation
from permlmc.studies.ensembles import (
    OUTPUT_ENSEMBLE,
    WEIGHT_AVERAGE,
    ensemble_metrics,
    ensemble_probabilities,
    ensemble_table,
    weight_average,
)
from permlmc.training.line import EVALUATED_POINTS, line_endpoints, parameter_cosine, train_line
from permlmc.training.loop import TrainConfig, initialise

ARCH = Architecture("mlp", 1, 16, (1, 4, 4), 3)
BN_ARCH = Architecture("vgg", 11, 2, (1, 8, 8), 3)
CONFIG = TrainConfig(lr=0.05, batch_size=16, max_epochs=2, target_loss=0.0)


def _data(n: int = 96, seed: int = 0, shape: tuple[int, ...] = (1, 4, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    return x, (x.flatten(1)[:, :3]).argmax(1)


def _params(seed: int = 0) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in initialise(ARCH, seed).state_dict().items()}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_output_ensemble_of_identical_members_is_the_member() -> None:
    forward, params = functional_forward(build_model(ARCH)), _params()
    x, y = _data()
    probabilities = ensemble_probabilities(forward, [params, params, params], x)
    torch.testing.assert_close(probabilities, forward(params, x).softmax(1))
    single, ensemble = evaluate(forward, params, x, y), ensemble_metrics(forward, [params, params], x, y)
    assert ensemble.error == single.error and ensemble.loss == pytest.approx(single.loss, rel=1e-5)


def test_output_ensemble_averages_probabilities_not_logits() -> None:
    forward, a, b = functional_forward(build_model(ARCH)), _params(0), _params(1)
    x, _ = _data()
    expected = (forward(a, x).softmax(1) + forward(b, x).softmax(1)) / 2
    torch.testing.assert_close(ensemble_probabilities(forward, [a, b], x), expected)
    assert not torch.allclose(expected, ((forward(a, x) + forward(b, x)) / 2).softmax(1), atol=1e-4)


def test_weight_average_with_itself_is_the_same_function_but_not_with_a_permuted_copy() -> None:
    model = build_model(ARCH)
    forward, params, (x, _) = functional_forward(model), _params(), _data()
    assert _equal(weight_average([params, params]), params)
    spec = permutation_spec(ARCH)
    permuted = apply_permutation(spec, random_permutation(spec, params, torch.Generator().manual_seed(0)), params)
    assert max_logit_difference(forward, params, permuted, x) < 1e-5  # the permuted copy is the same function
    assert max_logit_difference(forward, params, weight_average([params, permuted]), x) > 1e-2


def test_ensemble_table_rows() -> None:
    forward, a, b = functional_forward(build_model(ARCH)), _params(0), _params(1)
    x, y = _data()
    table = ensemble_table(forward, [a, b], x, y)
    assert list(table) == ["model A", "model B", OUTPUT_ENSEMBLE, WEIGHT_AVERAGE]
    assert table["model B"] == evaluate(forward, b, x, y)
    assert table[WEIGHT_AVERAGE] == evaluate(forward, interpolate(a, b, 0.5), x, y)
    same = ensemble_table(forward, [a, a], x, y)
    assert same[WEIGHT_AVERAGE] == same["model A"] == same["model B"]


def test_weight_average_of_batchnorm_networks_needs_statistics_batches() -> None:
    model = build_model(BN_ARCH)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="BatchNorm"):
        weight_average([params, params])
    x, _ = _data(32, shape=BN_ARCH.input_shape)
    average = weight_average([params, params], model=model, batches=[x])
    assert not torch.equal(average["blocks.0.norm.running_mean"], params["blocks.0.norm.running_mean"])


def test_line_takes_exact_steps_and_is_bitwise_reproducible() -> None:
    first = train_line(ARCH, 3, CONFIG, _data(), _data(20, 1))
    again = train_line(ARCH, 3, CONFIG, _data(), _data(20, 1))
    other = train_line(ARCH, 4, CONFIG, _data(), _data(20, 1))
    assert first.epochs == 2 and first.steps == 2 * 6 and first.stopped_by == "max_epochs"  # 96 / 16 = 6 batches
    assert [h["epoch"] for h in first.history] == [1, 2]
    assert _equal(first.theta_1, again.theta_1) and _equal(first.theta_2, again.theta_2)
    assert not torch.equal(first.theta_1["hidden.0.weight"], other.theta_1["hidden.0.weight"])
    assert not torch.equal(first.theta_1["hidden.0.weight"], first.theta_2["hidden.0.weight"])


def test_line_midpoint_is_the_weight_average_of_its_endpoints() -> None:
    config = TrainConfig(lr=0.1, batch_size=16, max_epochs=10, target_loss=0.0)
    result = train_line(ARCH, 0, config, _data(), _data(20, 1))
    forward, (x, y) = functional_forward(build_model(ARCH)), _data(20, 1)
    midpoint = interpolate(result.theta_1, result.theta_2, 0.5)
    torch.testing.assert_close(midpoint, weight_average([result.theta_1, result.theta_2]))
    assert set(result.test) == set(EVALUATED_POINTS)
    assert result.test[0.5] == evaluate(forward, midpoint, x, y)
    assert result.test[0.0] == evaluate(forward, result.theta_1, x, y)
    # the whole line is trained, so its midpoint learns too (chance is 2/3 on 3 classes)
    assert result.train[0.5].error < 0.2


def test_line_starts_exactly_at_its_init_and_leaves_it_untouched() -> None:
    start = (_params(5), _params(6))
    kept = tuple({k: v.clone() for k, v in theta.items()} for theta in start)
    assert all(_equal(s, e) for s, e in zip(line_endpoints(ARCH, 0, start), start, strict=True))
    from_default = train_line(ARCH, 0, CONFIG, _data(), _data(20, 1))
    from_explicit = train_line(ARCH, 0, CONFIG, _data(), _data(20, 1), init=line_endpoints(ARCH, 0))
    assert _equal(from_default.theta_1, from_explicit.theta_1) and _equal(from_default.theta_2, from_explicit.theta_2)
    from_start = train_line(ARCH, 0, CONFIG, _data(), _data(20, 1), init=start)
    assert all(_equal(s, k) for s, k in zip(start, kept, strict=True))
    assert not _equal(from_start.theta_1, from_default.theta_1)
    with pytest.raises(ValueError, match="endpoint 2"):
        line_endpoints(ARCH, 0, (start[0], {k: v for k, v in start[1].items() if k != "head.bias"}))


def test_cosine_regulariser_pushes_the_endpoints_apart() -> None:
    # two nearly equal endpoints (cosine ~ 0.99): without the regulariser the line stays short
    theta = _params(0)
    g = torch.Generator().manual_seed(1)
    near = {k: v + 0.1 * v.abs().mean() * torch.randn(v.shape, generator=g) for k, v in theta.items()}
    model = build_model(ARCH)
    start_cosine = parameter_cosine(model, theta, near)
    config = TrainConfig(lr=0.05, batch_size=16, max_epochs=3, target_loss=0.0)
    cosines = {
        beta: train_line(ARCH, 0, config, _data(), _data(20, 1), init=(theta, near), beta=beta).history[-1]["cosine"]
        for beta in (0.0, 1.0)
    }
    assert start_cosine > 0.95
    assert cosines[1.0] < cosines[0.0] - 0.05


def test_batchnorm_line_endpoints_and_midpoint_have_their_own_statistics() -> None:
    train_xy, test_xy = _data(32, shape=BN_ARCH.input_shape), _data(16, 1, shape=BN_ARCH.input_shape)
    config = TrainConfig(lr=0.05, batch_size=16, max_epochs=1, target_loss=0.0)
    result = train_line(BN_ARCH, 0, config, train_xy, test_xy)
    model = build_model(BN_ARCH)
    batches = list(train_xy[0].split(16))
    average = weight_average([result.theta_1, result.theta_2], model=model, batches=batches)
    forward = functional_forward(model)
    expected = evaluate(forward, average, *test_xy)  # lerp at 1/2 and the mean differ by rounding only
    assert result.test[0.5].loss == pytest.approx(expected.loss, rel=1e-5)
    interpolated = interpolate(result.theta_1, result.theta_2, 0.5)
    assert not torch.equal(average["blocks.0.norm.running_var"], interpolated["blocks.0.norm.running_var"])
