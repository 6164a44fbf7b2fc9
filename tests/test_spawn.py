"""Spawning children from a parent at a spawn point: a child spawned at the end is its parent (train()'s network),
children share the parent's first k epochs and then differ only by data order, and the run is deterministic."""

from __future__ import annotations

import pytest
import torch

from permlmc.models import Architecture
from permlmc.training.loop import TrainConfig, train
from permlmc.training.spawn import spawn

ARCH = Architecture("mlp", 1, 16, (1, 4, 4), 3)
CONFIG = TrainConfig(lr=0.05, batch_size=16, max_epochs=4, target_loss=0.0, schedule="cosine")


def _data(n: int = 80, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("at", [CONFIG.max_epochs, CONFIG.max_epochs + 3])
def test_a_child_spawned_at_the_end_is_its_parent(at: int) -> None:
    parent = train(ARCH, 7, CONFIG, _data(), _data(40, 1))
    children = spawn(ARCH, 7, CONFIG, _data(), _data(40, 1), at=at, children=[1, 2])
    for child in children.values():
        assert _same(child.state_dict, parent.state_dict) and child.history == parent.history
        assert child.steps == parent.steps and child.test == parent.test


def test_children_share_the_first_epochs_and_then_differ_by_data_order() -> None:
    parent = train(ARCH, 7, CONFIG, _data(), _data(40, 1))
    children = spawn(ARCH, 7, CONFIG, _data(), _data(40, 1), at=2, children=[1, 2])
    for child in children.values():
        assert child.history[:2] == parent.history[:2] and child.epochs == CONFIG.max_epochs
        assert [r["lr"] for r in child.history] == [r["lr"] for r in parent.history]  # the parent's schedule
    one, two = children[1], children[2]
    assert not _same(one.state_dict, two.state_dict) and not _same(one.state_dict, parent.state_dict)
    again = spawn(ARCH, 7, CONFIG, _data(), _data(40, 1), at=2, children=[2])[2]
    assert _same(again.state_dict, two.state_dict)  # a child depends on its number only, not on its siblings


def test_spawning_at_zero_shares_only_the_initialisation_and_bad_points_are_named() -> None:
    children = spawn(ARCH, 7, CONFIG, _data(), _data(40, 1), at=0, children=[1, 2])
    assert children[1].history[0] != children[2].history[0]
    with pytest.raises(ValueError, match="epochs >= 0"):
        spawn(ARCH, 7, CONFIG, _data(), _data(40, 1), at=-1, children=[1])
    with pytest.raises(ValueError, match="numbered from 1"):
        spawn(ARCH, 7, CONFIG, _data(), _data(40, 1), at=1, children=[0])


def test_snapshots_are_the_weights_of_one_run_at_each_epoch() -> None:
    from permlmc.training.spawn import snapshots

    kept = snapshots(ARCH, 7, CONFIG, _data(), [0, 2, CONFIG.max_epochs, CONFIG.max_epochs + 5])
    parent = train(ARCH, 7, CONFIG, _data(), _data(40, 1))
    assert _same(kept[CONFIG.max_epochs], parent.state_dict) and _same(kept[CONFIG.max_epochs + 5], parent.state_dict)
    at_two = spawn(ARCH, 7, CONFIG, _data(), _data(40, 1), at=2, children=[1])  # the fork point is the snapshot
    assert not _same(kept[2], kept[0]) and not _same(kept[2], parent.state_dict)
    assert at_two[1].history[:2] == parent.history[:2]
