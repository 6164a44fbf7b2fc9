"""Stacked interpolation curves equal the alpha-by-alpha reference; device names resolve or fail clearly."""

from __future__ import annotations

import pytest
import torch
from tests.rounding import magnitude, rounding_tolerance

from permlmc.device import configure_precision, resolve_device, to_device
from permlmc.evaluation import evaluate, evaluate_stacked, forward_stacked, functional_forward, stack_states
from permlmc.interpolation.batchnorm import batchnorm_layers, reset_statistics
from permlmc.interpolation.input_layer import linear_input_layer
from permlmc.interpolation.path import (
    CPU_CHUNK_BYTES,
    PathSampler,
    cpu_rows,
    interpolate,
    interpolate_stacked,
    interpolation_curve,
    state_bytes,
)
from permlmc.models import Architecture, build_model
from permlmc.training.loop import initialise

INPUT_SHAPE = (1, 8, 8)  # that of the ``arch`` fixture (conftest)
ALPHAS = [0.0, 0.3, 0.5, 0.8, 1.0]


pytestmark = pytest.mark.usefixtures("one_thread")


def _endpoint(arch: Architecture, seed: int) -> dict[str, torch.Tensor]:
    """Initial weights of ``arch``, with BatchNorm affine maps and running statistics away from their defaults
    (defaults would make ``interpolate`` and ``reset`` agree too easily)."""
    g = torch.Generator().manual_seed(100 + seed)
    model = initialise(arch, seed)
    params = model.state_dict()
    for name, layer in batchnorm_layers(model):
        n = layer.num_features
        params[f"{name}.weight"] = 0.5 + torch.rand(n, generator=g)
        params[f"{name}.bias"] = 0.3 * torch.randn(n, generator=g)
        params[f"{name}.running_mean"] = 0.3 * torch.randn(n, generator=g)
        params[f"{name}.running_var"] = 0.5 + torch.rand(n, generator=g)
    return params


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *INPUT_SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return [torch.randn(24, *INPUT_SHAPE, generator=g) for _ in range(3)]


def _values(points: list) -> torch.Tensor:
    return torch.tensor([p.value for p in points], dtype=torch.float64)


def _curve_atol(
    model: torch.nn.Module, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], bn_mode: str, rows: int, values: torch.Tensor,
) -> float:
    """How far two computations of a curve (``values``: one of them) may differ by rounding (tests/rounding.py):
    tau = L sqrt(n) eps32 (n: a ``rows``-row forward's sums, or the moments over 24 rows x 8 x 8 when statistics
    are re-estimated) of (2 x the largest logit + the largest value): a mean cross-entropy moves by at most twice
    the largest logit change (its gradient in the logits has l1 norm <= 2), and its own sum rounds relative to
    itself. An error rate moves only by whole examples (1/40 here), far above that, so a flipped prediction shows."""
    moment_rows = len(_batches()[0]) if bn_mode != "interpolate" else 0
    tau = rounding_tolerance(model, INPUT_SHAPE, rows=rows, moment_rows=moment_rows)
    forward = functional_forward(model)
    with torch.no_grad():
        logits = max(magnitude(forward(params, x)) for params in (a, b) for x, _ in splits.values())
    return tau * (2 * logits + magnitude(values))


@pytest.mark.parametrize("bn_mode", ["interpolate", "reset", "repair"])
def test_stacked_curve_equals_the_per_alpha_loop(arch: Architecture, bn_mode: str) -> None:
    """The stacked curve as the pair jobs compute it (the input-layer shortcut where it applies: plain interpolation
    of an MLP), and without the shortcut where it would apply, against the per-alpha loop without it."""
    model = build_model(arch)
    a, b = _endpoint(arch, 0), _endpoint(arch, 1)
    splits = {"train": _data(40, 1), "test": _data(24, 2)}
    options = {"bn_mode": bn_mode, "batches": _batches() if bn_mode != "interpolate" else ()}
    if bn_mode != "interpolate" and not batchnorm_layers(model):
        with pytest.raises(ValueError, match="needs BatchNorm"):  # both paths refuse, before any work
            interpolation_curve(model, a, b, ALPHAS, splits, stacked=True, **options)
        return
    # 56-row forwards: several data chunks per split in both paths, two networks per chunk when stacked
    reference = interpolation_curve(model, a, b, ALPHAS, splits, stacked=False, batch_size=56, shortcut=False,
                                    **options)
    atol = _curve_atol(model, a, b, splits, bn_mode, rows=56, values=_values(reference))
    shortcuts = [True]
    if bn_mode == "interpolate" and linear_input_layer(model, splits["train"][0]) is not None:
        shortcuts.append(False)  # elsewhere the shortcut does not apply: the same computation
    for shortcut in shortcuts:
        stacked = interpolation_curve(model, a, b, ALPHAS, splits, stacked=True, batch_size=56, shortcut=shortcut,
                                      **options)
        assert [(p.alpha, p.split, p.metric) for p in stacked] == [(p.alpha, p.split, p.metric) for p in reference]
        torch.testing.assert_close(_values(stacked), _values(reference), rtol=0, atol=atol,
                                   msg=lambda text, shortcut=shortcut: f"{text}\nshortcut={shortcut}")
    losses = _values([p for p in reference if p.metric == "loss"])
    assert losses.max() - losses.min() > 1e-3, "the curve is flat: the comparison would prove little"


@pytest.mark.parametrize("bn_mode", ["reset", "repair"])
def test_alpha_groups_do_not_change_the_curve(bn_mode: str) -> None:
    arch = Architecture("resnet", 18, 4, INPUT_SHAPE, 10)
    model = build_model(arch)
    a, b = _endpoint(arch, 0), _endpoint(arch, 1)
    splits = {"train": _data(32, 1)}
    curves = []
    for max_bytes in (state_bytes(a), 2 * state_bytes(a), 10**12):  # groups of 1, 2 and all 5 alphas
        curves.append(_values(interpolation_curve(model, a, b, ALPHAS, splits, bn_mode=bn_mode, batches=_batches(),
                                                  stacked=True, max_batch_bytes=max_bytes)))
    atol = _curve_atol(model, a, b, splits, bn_mode, rows=32, values=curves[2])  # groups differ by rounding only
    torch.testing.assert_close(curves[0], curves[2], rtol=0, atol=atol)  # groups of 1 against all 5 alphas
    torch.testing.assert_close(curves[1], curves[2], rtol=0, atol=atol)  # groups of 2


def test_group_size_respects_both_budgets() -> None:
    arch = Architecture("vgg", 11, 4, INPUT_SHAPE, 10)
    model = build_model(arch)
    a = _endpoint(arch, 0)
    plain = PathSampler(model, a, a)
    assert plain.group_size(11, 3 * state_bytes(a) + 1, 10) == 3  # statistics rows do not apply
    assert plain.group_size(11, 10**12, 10) == 11
    assert plain.group_size(11, 1, 10) == 1  # never empty
    reset = PathSampler(model, a, a, "reset", _batches())  # batches of 24 rows
    assert reset.group_size(11, 10**12, 100) == 4


@pytest.mark.parametrize("arch", [Architecture("vgg", 11, 4, INPUT_SHAPE, 10),
                                  Architecture("resnet", 50, 4, INPUT_SHAPE, 10)], ids=lambda a: a.name)
def test_stacked_reset_gives_each_networks_own_statistics(arch: Architecture) -> None:
    model = build_model(arch)
    a, b = _endpoint(arch, 0), _endpoint(arch, 1)
    sampler = PathSampler(model, a, b, "reset", _batches())
    stacked = sampler.stacked(ALPHAS)
    # K stacked forwards against single ones differ by rounding only: tau = L sqrt(n) eps32 (tests/rounding.py;
    # n: the moments over 24 rows x 8 x 8) of the layer's input magnitude m (its largest channel RMS) for a mean,
    # 2 tau m^2 for a variance (a mean of squares). Another network's statistics exceed that in every layer.
    tau = rounding_tolerance(model, INPUT_SHAPE, rows=24, moment_rows=24)
    for k, alpha in enumerate(ALPHAS):
        single = reset_statistics(model, interpolate(a, b, alpha), _batches())
        assert single.keys() == stacked.keys()
        for name, _ in batchnorm_layers(model):
            mean, var = single[f"{name}.running_mean"], single[f"{name}.running_var"]
            m2 = float((var + mean * mean).max())  # m^2
            where = f"{name} at alpha {alpha}"
            torch.testing.assert_close(stacked[f"{name}.running_mean"][k], mean, rtol=0, atol=tau * m2**0.5,
                                       msg=lambda text, where=where: f"{where}, mean: {text}")
            torch.testing.assert_close(stacked[f"{name}.running_var"][k], var, rtol=0, atol=2 * tau * m2,
                                       msg=lambda text, where=where: f"{where}, variance: {text}")
        for key, value in single.items():  # the interpolated parameters: the same elementwise lerp, bitwise
            if ".running_" not in key:
                torch.testing.assert_close(stacked[key][k], value, rtol=0, atol=0, msg=f"{key} at alpha {alpha}")
    stale = a[f"{batchnorm_layers(model)[-1][0]}.running_var"]
    assert not torch.allclose(stacked[f"{batchnorm_layers(model)[-1][0]}.running_var"][0], stale)


def test_stacked_pieces_match_their_single_network_versions() -> None:
    arch = Architecture("cnn", 2, 5, INPUT_SHAPE, 10)
    model = build_model(arch)
    a, b = _endpoint(arch, 0), _endpoint(arch, 1)
    stacked = interpolate_stacked(a, b, ALPHAS)
    singles = [interpolate(a, b, alpha) for alpha in ALPHAS]
    for key, value in stack_states(singles).items():
        torch.testing.assert_close(stacked[key], value, rtol=0, atol=0)
    x, y = _data(30, 3)
    losses, errors = evaluate_stacked(forward_stacked(model), stacked, x, y, batch_size=16)
    for k, params in enumerate(singles):
        metrics = evaluate(functional_forward(model), params, x, y, batch_size=16)
        assert float(losses[k]) == pytest.approx(metrics.loss, rel=1e-5)
        assert float(errors[k]) == metrics.error
    assert a["convs.0.weight"].data_ptr() not in {v.data_ptr() for v in stacked.values()}


def test_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bogus in ("tpu", "gpu", "cuda:x"):
        with pytest.raises(ValueError, match=repr(bogus)):
            resolve_device(bogus)
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:0"):
            with pytest.raises(ValueError, match=f"'{name}'.*CUDA is not available"):
                resolve_device(name)
    else:
        with pytest.raises(ValueError, match="cuda:99"):
            resolve_device("cuda:99")


def test_configure_precision_sets_both_flags() -> None:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        configure_precision(tf32=True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        configure_precision()
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.gpu
@pytest.mark.parametrize("stacked", [True, False])
def test_curve_on_the_gpu_matches_the_cpu(stacked: bool) -> None:
    configure_precision(tf32=False)
    arch = Architecture("resnet", 18, 6, INPUT_SHAPE, 10)
    model = build_model(arch)
    a, b = _endpoint(arch, 0), _endpoint(arch, 1)
    x, y = _data(40, 1)
    gpu = resolve_device("cuda")
    for mode in ("interpolate", "reset", "repair"):
        cpu_curve = interpolation_curve(model, a, b, ALPHAS, {"train": (x, y)}, bn_mode=mode, batches=_batches(),
                                        stacked=stacked)
        gpu_curve = interpolation_curve(model, to_device(a, gpu), to_device(b, gpu), ALPHAS,
                                        {"train": (x.to(gpu), y.to(gpu))}, bn_mode=mode,
                                        batches=[t.to(gpu) for t in _batches()], stacked=stacked)
        torch.testing.assert_close(_values(gpu_curve), _values(cpu_curve), rtol=1e-4, atol=1e-5)


def test_input_layer_shortcut_equals_the_direct_curve(arch: Architecture) -> None:
    """MLPs take the shortcut (their input layer is linear); every family gives the direct curve's values."""
    model = build_model(arch)
    g = torch.Generator().manual_seed(0)
    a, b = (initialise(arch, seed).state_dict() for seed in (1, 2))
    x = torch.randn(70, *arch.input_shape, generator=g)
    y = torch.randint(0, arch.num_classes, (70,), generator=g)
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    splits = {"train": (x, y), "test": (x[:33], y[:33])}
    fast = interpolation_curve(model, a, b, alphas, splits, batch_size=32)
    direct = interpolation_curve(model, a, b, alphas, splits, batch_size=32, shortcut=False)
    assert [(p.alpha, p.split, p.metric) for p in fast] == [(p.alpha, p.split, p.metric) for p in direct]
    torch.testing.assert_close([p.value for p in fast], [p.value for p in direct], rtol=1e-5, atol=1e-6)
    assert (linear_input_layer(model, x) is not None) == (arch.model_name == "mlp")
    ends = [p.value for p in fast if p.alpha in (0.0, 1.0)]
    assert ends == [p.value for p in direct if p.alpha in (0.0, 1.0)]  # endpoints exactly


def test_cpu_rows_keep_the_widest_activation_of_a_chunk_cache_sized() -> None:
    conv = build_model(Architecture("vgg", 11, 16, (3, 32, 32), 10))  # 16 channels x 32 x 32 floats per example
    rows = cpu_rows(conv, torch.zeros(2, 3, 32, 32), 4096)
    assert rows == CPU_CHUNK_BYTES // (16 * 32 * 32 * 4)
    mlp = build_model(Architecture("mlp", 1, 64, (1, 28, 28), 10))  # widest: the 784 inputs' flattening
    assert cpu_rows(mlp, torch.zeros(2, 1, 28, 28), 4096) == 4096
    assert cpu_rows(mlp, torch.zeros(2, 1, 28, 28), 100) == 100
    with torch.device("meta"):  # its structure is all that counts: no 590M weights drawn (2.4 GB)
        wide = build_model(Architecture("vgg", 11, 512, (3, 32, 32), 10))
    assert cpu_rows(wide, torch.zeros(2, 3, 32, 32), 4096) == 64


@pytest.mark.parametrize("name", ["mlp", "resnet"])
def test_a_curve_does_not_depend_on_where_the_model_skeleton_sits(name: str) -> None:
    """Only the parameters' and the data's device matter: a skeleton elsewhere (here on the meta device; on a GPU
    run, the CPU) is called for its structure only."""
    arch = Architecture(name, 18 if name == "resnet" else 1, 6, INPUT_SHAPE, 10)
    a, b = _endpoint(arch, 0), _endpoint(arch, 1)
    x, y = _data(40, 1)
    here = interpolation_curve(build_model(arch), a, b, ALPHAS, {"train": (x, y)})
    elsewhere = interpolation_curve(build_model(arch).to("meta"), a, b, ALPHAS, {"train": (x, y)})
    assert torch.equal(_values(elsewhere), _values(here))
