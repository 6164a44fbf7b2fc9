"""Shared fixtures: every registered model at a small width, on tiny synthetic inputs."""

from __future__ import annotations

import pytest
import torch

from lmc.models import MODELS, Architecture

INPUT_SHAPE = (1, 8, 8)


def small_architectures() -> list[Architecture]:
    return [
        Architecture(name, depth, 6, INPUT_SHAPE, 10)
        for name, family in MODELS.items()
        for depth in family.example_depths
    ]


@pytest.fixture(params=small_architectures(), ids=lambda a: a.name)
def arch(request: pytest.FixtureRequest) -> Architecture:
    return request.param


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randn(32, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
