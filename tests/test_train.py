"""Training: exact step counts, bitwise reproducibility, the stopping rule, config validation."""

from __future__ import annotations

import pytest
import torch

from permlmc.artifacts.trained import training_verdict
from permlmc.models import Architecture
from permlmc.training.loop import TrainConfig, train
from permlmc.training.verdict import TrainingDiverged

ARCH = Architecture("mlp", 1, 16, (1, 4, 4), 3)


def _data(n: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=g)
    return x, (x.flatten(1)[:, :3]).argmax(1)


def test_two_epochs_take_the_exact_number_of_steps() -> None:
    config = TrainConfig(batch_size=32, max_epochs=2, target_loss=0.0)
    result = train(ARCH, 1, config, _data(100), _data(20, 1))
    assert result.epochs == 2 and result.steps == 2 * 4  # ceil(100 / 32) = 4 batches per epoch
    assert result.stopped_by == "max_epochs"
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_same_seed_gives_bitwise_identical_weights_and_other_seed_differs() -> None:
    config = TrainConfig(batch_size=16, max_epochs=2, target_loss=0.0)
    first = train(ARCH, 3, config, _data(), _data(20, 1)).state_dict
    second = train(ARCH, 3, config, _data(), _data(20, 1)).state_dict
    other = train(ARCH, 4, config, _data(), _data(20, 1)).state_dict
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["hidden.0.weight"], other["hidden.0.weight"])


def test_training_stops_at_the_target_loss() -> None:
    config = TrainConfig(lr=0.1, batch_size=16, max_epochs=500, target_loss=0.05)
    result = train(ARCH, 1, config, _data(64), _data(20, 1))
    assert result.stopped_by == "target_loss"
    assert result.history[-1]["train_loss"] <= 0.05 < result.history[-2]["train_loss"]
    assert result.epochs < 500


def test_cosine_schedule_decays_to_zero() -> None:
    config = TrainConfig(lr=0.02, batch_size=50, max_epochs=4, target_loss=0.0, schedule="cosine")
    lrs = [h["lr"] for h in train(ARCH, 1, config, _data(), _data(20, 1)).history]
    assert lrs[0] == pytest.approx(0.02) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.005


def test_unknown_or_bad_training_keys_are_named() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 0})
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig.from_dict({"schedule": "linear"})


def test_a_diverged_loss_stops_training_naming_the_network_epoch_and_rate() -> None:
    config = TrainConfig(lr=1e30, batch_size=16, max_epochs=5, target_loss=0.0)
    with pytest.raises(TrainingDiverged, match=r"mlp-d1-w16 seed 2: .* epoch \d .* learning rate 1e\+30"):
        train(ARCH, 2, config, _data(64), _data(20, 1))


@pytest.mark.parametrize(("final", "stopped_by", "verdict"), [
    ({"train_loss": 0.005, "train_error": 0.0}, "target_loss", "yes"),
    ({"train_loss": 0.05, "train_error": 0.01}, "max_epochs", "yes"),  # 5x its target: short of it, not far
    ({"train_loss": 0.5, "train_error": 0.1}, "max_epochs", "short"),
    ({"train_loss": 900.0, "train_error": 0.88}, "max_epochs", "no"),  # 10 classes: chance error 0.9
    ({"train_loss": float("nan"), "train_error": 0.1}, "max_epochs", "no"),
])
def test_the_verdict_on_a_network_reads_chance_and_the_target(final: dict, stopped_by: str, verdict: str) -> None:
    meta = {"final": final, "stopped_by": stopped_by, "architecture": {"num_classes": 10},
            "training": {"target_loss": 0.01}}
    found, why = training_verdict(meta)
    assert found == verdict and bool(why) == (verdict != "yes")
    imported = {**meta, "training": None, "stopped_by": "imported"}  # no target: only "no" applies
    assert training_verdict(imported)[0] == ("no" if verdict == "no" else "yes")
