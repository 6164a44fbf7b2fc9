"""Layer-wise interpolation: groups partition every registered model's state dict; a pair that differs in one
layer only has a flat curve for every other layer; identical endpoints have zero barriers everywhere."""

from __future__ import annotations

import pytest
import torch
from tests.conftest import INPUT_SHAPE, small_architectures

from permlmc.evaluation import evaluate, functional_forward
from permlmc.interpolation.layerwise import layer_groups, layerwise_barriers, layerwise_curves, with_group
from permlmc.interpolation.path import interpolate
from permlmc.models import Architecture
from permlmc.training.loop import initialise

ALPHAS = [0.0, 0.5, 1.0]  # the endpoints and the midpoint the barriers read


def _splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return {"train": (torch.randn(40, *INPUT_SHAPE, generator=g), torch.randint(0, 10, (40,), generator=g))}


@pytest.mark.parametrize("depth", [None, 1, 2, 3])
@pytest.mark.parametrize("arch", small_architectures(), ids=lambda a: a.name)
def test_groups_partition_the_state_dict(arch: Architecture, depth: int | None) -> None:
    params = dict(initialise(arch, 0).state_dict())
    groups = layer_groups(params, depth)
    keys = [k for group in groups.values() for k in group]
    assert sorted(keys) == sorted(params) and len(keys) == len(set(keys))
    if depth is None:  # one group per module: a weight and its bias together
        assert all(len({k.rsplit(".", 1)[0] for k in group}) == 1 for group in groups.values())


def test_moving_every_group_at_once_is_the_whole_path() -> None:
    arch = small_architectures()[0]
    a, b = (dict(initialise(arch, s).state_dict()) for s in (1, 2))
    whole = with_group(a, b, list(a), 0.3)
    assert all(torch.equal(whole[k], interpolate(a, b, 0.3)[k]) for k in a)


@pytest.mark.parametrize("arch", small_architectures(), ids=lambda a: a.name)
def test_only_the_layer_that_differs_has_a_curve(arch: Architecture) -> None:
    model = initialise(arch, 0)
    a = dict(model.state_dict())
    groups = layer_groups(a)
    # the classifier: at initialisation a deep network's output barely depends on its early layers
    changed = [name for name, keys in groups.items() if any(a[k].is_floating_point() for k in keys)][-1]
    other = dict(initialise(arch, 1).state_dict())
    b = {k: other[k] if k in groups[changed] else v for k, v in a.items()}
    names = list(groups)
    # the first two groups, one in the middle and the changed one (a ResNet-50 has a hundred): their curves, in the
    # groups' order, so that the changed group's `up_to` curve moves every group that differs, the whole path
    chosen = dict.fromkeys([*names[:2], names[len(names) // 2], changed])
    points = layerwise_curves(model, a, b, {name: groups[name] for name in chosen}, ALPHAS, _splits())
    reference = evaluate(functional_forward(model), a, *_splits()["train"])
    for p in points:
        if p.layer != changed and p.moved == "alone":
            assert p.value == pytest.approx(getattr(reference, p.metric), abs=1e-6), p
    moved = [p.value for p in points if p.layer == changed and p.metric == "loss" and p.moved == "alone"]
    whole = [p for p in points if p.layer == changed and p.moved == "up_to"]  # the last group: the whole path
    assert [p.value for p in whole if p.alpha == 1.0 and p.metric == "loss"] == pytest.approx(
        [evaluate(functional_forward(model), b, *_splits()["train"]).loss], abs=1e-6)
    assert max(moved) - min(moved) > 1e-4  # the one layer that differs does move the loss
    some = dict([*groups.items()][:2] + [*groups.items()][-2:])  # identical endpoints: a few groups say it all
    rows = layerwise_barriers(layerwise_curves(model, a, a, some, ALPHAS, _splits()))
    assert len(rows) == 2 * 2 * len(some) and all(r["barrier"] == pytest.approx(0, abs=1e-6) for r in rows)
