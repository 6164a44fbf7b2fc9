"""The transformer training protocol as options of the one training loop: AdamW (``training.optimizer``) and the
warm-up + cosine schedule (``warmup_cosine``, ``training.warmup_epochs``), through every engine, resume included;
the paper's SGD protocols are untouched."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from tests.workflow_runs import TINY, dry_run, planning_error

from permlmc.artifacts.files import load_tensors, read_json, sidecar_path
from permlmc.models import Architecture
from permlmc.training.line import train_line
from permlmc.training.loop import OPTIMIZERS, TrainConfig, build_optimiser, learning_rate, train
from permlmc.training.resume import ResumeFile
from permlmc.training.spawn import spawn
from permlmc.training.stacked import choose_engine, train_seeds

ARCH = Architecture("mlp", 1, 16, (1, 4, 4), 3)
ADAMW = TrainConfig(lr=0.01, weight_decay=0.05, batch_size=16, max_epochs=6, target_loss=0.0, optimizer="adamw",
                    schedule="warmup_cosine", warmup_epochs=2)


def _data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=g)
    return x, (x.flatten(1)[:, :3]).argmax(1)  # a learnable rule: the largest of the first three inputs


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Interrupted(Exception):
    """Raised from ``on_epoch``: the run stops as a killed job would, after its last saved state."""


def test_warmup_cosine_rises_linearly_then_decays_to_zero() -> None:
    config = TrainConfig(lr=0.1, max_epochs=20, schedule="warmup_cosine", warmup_epochs=4)
    lrs = [learning_rate(config, epoch) for epoch in range(config.max_epochs)]
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # lr (e + 1) / warmup_epochs
    assert lrs[4] == pytest.approx(0.1) and max(lrs) == pytest.approx(0.1)  # the peak, where the cosine starts
    assert lrs[3:] == sorted(lrs[3:], reverse=True)  # monotone after the warm-up
    assert 0 < lrs[-1] < 0.01 * config.lr  # towards 0 at max_epochs
    assert lrs[-1] == pytest.approx(0.05 * (1 + math.cos(math.pi * 15 / 16)))


def test_the_paper_schedules_are_unchanged() -> None:
    cosine = TrainConfig(lr=0.02, max_epochs=7, schedule="cosine")
    assert [learning_rate(cosine, e) for e in range(7)] == [0.5 * 0.02 * (1 + math.cos(math.pi * e / 7))
                                                           for e in range(7)]  # bitwise, as before
    no_warmup = TrainConfig(lr=0.02, max_epochs=7, schedule="warmup_cosine")
    assert [learning_rate(no_warmup, e) for e in range(7)] == [learning_rate(cosine, e) for e in range(7)]
    assert learning_rate(TrainConfig(lr=0.03), 5) == 0.03


def test_new_keys_at_their_defaults_leave_the_recorded_config_as_before() -> None:
    assert TrainConfig().optimizer == "sgd" and TrainConfig().warmup_epochs == 0
    assert set(TrainConfig().to_dict()) == {"lr", "momentum", "weight_decay", "batch_size", "max_epochs",
                                            "target_loss", "schedule"}  # resume fingerprints of older runs match
    assert ADAMW.to_dict()["optimizer"] == "adamw" and ADAMW.to_dict()["warmup_epochs"] == 2
    assert TrainConfig.from_dict(ADAMW.to_dict()) == ADAMW


@pytest.mark.parametrize(("keys", "message"), [
    ({"optimizer": "adam"}, r"training\.optimizer 'adam' is unknown.*'sgd', 'adamw'"),
    ({"max_epochs": 3, "warmup_epochs": 3, "schedule": "warmup_cosine"}, r"training\.warmup_epochs .* < training\."
                                                                            r"max_epochs \(3\), got 3"),
    ({"warmup_epochs": -1, "schedule": "warmup_cosine"}, r"training\.warmup_epochs must be >= 0"),
    ({"warmup_epochs": 2, "schedule": "cosine"}, r"training\.warmup_epochs is 2 but training\.schedule is 'cosine'"),
    ({"schedule": "linear"}, r"training\.schedule 'linear' is unknown.*'warmup_cosine'"),
])
def test_bad_protocol_keys_are_named(keys: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(keys)


def test_adamw_is_torchs_adamw_with_decoupled_decay_and_default_betas() -> None:
    optimiser = build_optimiser([torch.zeros(2, requires_grad=True)], ADAMW)
    assert isinstance(optimiser, torch.optim.AdamW)
    group = optimiser.param_groups[0]
    assert group["betas"] == (0.9, 0.999) and group["weight_decay"] == 0.05 and group["lr"] == 0.01
    assert set(OPTIMIZERS) == {"sgd", "adamw"}


def test_adamw_training_reduces_the_loss_on_the_warmup_schedule() -> None:
    config = TrainConfig(**{**ADAMW.to_dict(), "max_epochs": 15})
    result = train(ARCH, 1, config, _data(), _data(20, 1))
    losses = [r["train_loss"] for r in result.history]
    assert result.epochs == 15 and result.steps == 15 * 4  # 64 examples, batch 16
    assert losses[-1] < 0.5 * losses[0]
    assert [r["lr"] for r in result.history] == [learning_rate(config, e) for e in range(15)]
    sgd = train(ARCH, 1, TrainConfig(**{**config.to_dict(), "optimizer": "sgd"}), _data(), _data(20, 1))
    assert not _same(sgd.state_dict, result.state_dict)  # the option is not ignored


def test_an_interrupted_adamw_run_resumes_to_the_uninterrupted_weights(tmp_path) -> None:
    resume = ResumeFile(tmp_path / "state.safetensors", every=1)

    def stop_in_epoch_four(record: dict[str, float]) -> None:
        if record["epoch"] == 4:  # before epoch 4 is saved: the state on disk is that after epoch 3, mid-cosine
            raise Interrupted

    with pytest.raises(Interrupted):
        train(ARCH, 2, ADAMW, _data(), _data(20, 1), on_epoch=stop_in_epoch_four, resume=resume)
    meta = read_json(sidecar_path(resume.path))
    saved = load_tensors(resume.path.with_name(meta["tensors"]))
    assert meta["epoch"] == 3 and {"optimiser.0.exp_avg", "optimiser.0.exp_avg_sq", "optimiser.0.step"} <= set(saved)
    resumed = train(ARCH, 2, ADAMW, _data(), _data(20, 1), resume=resume)
    whole = train(ARCH, 2, ADAMW, _data(), _data(20, 1))
    assert _same(resumed.state_dict, whole.state_dict)
    assert resumed.history == whole.history and resumed.steps == whole.steps


def test_an_adamw_mlp_trains_sequentially_and_the_stacked_engine_refuses_it() -> None:
    assert choose_engine(ARCH, "cpu") == "stacked" and choose_engine(ARCH, "cpu", "adamw") == "sequential"
    results = train_seeds(ARCH, [3, 4], ADAMW, _data(), _data(20, 1))
    assert {r.engine for r in results.values()} == {"sequential"}
    assert _same(results[3].state_dict, train(ARCH, 3, ADAMW, _data(), _data(20, 1)).state_dict)
    with pytest.raises(ValueError, match=r"training\.optimizer 'adamw': the stacked engine trains with SGD only.*"
                                         r"'sequential'"):
        train_seeds(ARCH, [3], ADAMW, _data(), _data(20, 1), engine="stacked")


def test_spawning_and_lines_train_with_adamw() -> None:
    parent = train(ARCH, 7, ADAMW, _data(), _data(20, 1))
    child = spawn(ARCH, 7, ADAMW, _data(), _data(20, 1), at=ADAMW.max_epochs, children=[1])[1]
    assert _same(child.state_dict, parent.state_dict)  # a child spawned at the end is its parent
    forked = spawn(ARCH, 7, ADAMW, _data(), _data(20, 1), at=3, children=[1])[1]
    assert forked.history[:3] == parent.history[:3] and forked.epochs == ADAMW.max_epochs
    line = train_line(ARCH, 7, ADAMW, _data(), _data(20, 1))
    sgd_line = train_line(ARCH, 7, TrainConfig(**{**ADAMW.to_dict(), "optimizer": "sgd"}), _data(), _data(20, 1))
    assert line.epochs == ADAMW.max_epochs and not _same(line.theta_1, sgd_line.theta_1)


@pytest.mark.workflow
def test_the_workflow_passes_each_familys_protocol_and_refuses_a_warmup_as_long_as_the_run(tmp_path) -> None:
    config = {**TINY, "studies": {"width": {"arch": "mlp", "depths": [1], "widths": [4]},
                                  "depth": {"arch": "vit", "depths": [1], "widths": [8]}}}
    shell = dry_run(tmp_path, config, commands=True)
    vit, mlp = (json.loads(re.search(rf"--arch {arch} .*--config '([^']*)'", shell)[1]) for arch in ("vit", "mlp"))
    assert TrainConfig.from_dict(vit) == TrainConfig(lr=0.001, weight_decay=0.05, batch_size=128, max_epochs=30,
                                                     optimizer="adamw", schedule="warmup_cosine", warmup_epochs=2)
    assert "optimizer" not in mlp and "warmup_epochs" not in mlp  # older MLP jobs keep their params: no rerun
    bad = {**config, "training": {"vit": {"max_epochs": 2}}}  # the default 2 warm-up epochs leave no cosine
    assert "config key 'training.vit.warmup_epochs'" in planning_error(tmp_path, bad)
