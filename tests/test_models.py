"""Pinned shapes and parameter counts of every registered model."""

from __future__ import annotations

import pytest
import torch

from lmc.models import MODELS, Architecture, build_model

# (arch, depth, width, input shape, classes) -> parameter count, computed by hand.
PINNED = {
    ("mlp", 1, 16, (1, 28, 28), 10): 784 * 16 + 16 + 16 * 10 + 10,
    ("mlp", 2, 512, (1, 28, 28), 10): 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10,
    ("mlp", 4, 1024, (3, 32, 32), 100): 3072 * 1024 + 1024 + 3 * (1024 * 1024 + 1024) + 1024 * 100 + 100,
}


@pytest.mark.parametrize("key", list(PINNED), ids=lambda k: f"{k[0]}-d{k[1]}-w{k[2]}")
def test_parameter_count(key: tuple) -> None:
    model = build_model(Architecture(*key))
    assert sum(p.numel() for p in model.parameters()) == PINNED[key]


def test_every_family_is_pinned() -> None:
    assert {k[0] for k in PINNED} == set(MODELS)


def test_mlp_state_dict_names_and_output_shape() -> None:
    model = build_model(Architecture("mlp", 2, 8, (1, 8, 8), 10))
    assert list(model.state_dict()) == [
        "hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias", "head.weight", "head.bias"
    ]
    assert model.state_dict()["hidden.0.weight"].shape == (8, 64)
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)


@pytest.mark.parametrize("field,value", [("width", 0), ("depth", -1), ("num_classes", 0)])
def test_non_positive_sizes_are_rejected(field: str, value: int) -> None:
    kwargs = dict(arch="mlp", depth=1, width=4, input_shape=(1, 2, 2), num_classes=3) | {field: value}
    with pytest.raises(ValueError, match=field):
        Architecture(**kwargs)


def test_unknown_arch_is_rejected() -> None:
    with pytest.raises(ValueError, match="resnet9000"):
        Architecture("resnet9000", 1, 4, (1, 2, 2), 3)
