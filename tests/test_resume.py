"""Fault tolerance of training: a job killed with SIGKILL resumes and ends bitwise identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from permlmc.artifacts.files import sha256
from permlmc.cli.data import run_prepare_dataset
from permlmc.models import Architecture
from permlmc.training.loop import TrainConfig, train
from permlmc.training.resume import ResumeFile

CONFIG = '{"max_epochs": 40, "batch_size": 32, "target_loss": 0.0}'


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "digits.safetensors"
    run_prepare_dataset("digits", "unused", path, download=False, image_size=None, train_subset=None)
    return path


def _train_command(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "permlmc", "--threads", "1", "train-seeds", "--data", str(data), "--arch", "mlp",
            "--depth", "2", "--width", "64", "--seed", "3", "--config", CONFIG, "--checkpoint-every", "1",
            "--out", str(out)]


def _saved_epoch(sidecar: Path) -> int:
    """The epoch of the last saved training state (0 while none is; the sidecar is written atomically)."""
    return int(json.loads(sidecar.read_text())["epoch"]) if sidecar.exists() else 0


def test_killed_training_resumes_to_a_bitwise_identical_checkpoint(digits: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference" / "model.safetensors"
    subprocess.run(_train_command(digits, reference), check=True, capture_output=True)
    interrupted = tmp_path / "interrupted" / "model.safetensors"
    state = interrupted.with_name("train_state.json")
    process = subprocess.Popen(_train_command(digits, interrupted), stderr=subprocess.DEVNULL)
    while _saved_epoch(state) < 2 and process.poll() is None:  # a state, not a time: one state saved over another
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)  # at once: the run has 38 epochs to go, whatever the machine's speed
    process.wait()
    assert not interrupted.exists(), "training finished before it could be killed; make it longer"
    assert state.exists()
    rerun = subprocess.run(_train_command(digits, interrupted), check=True, capture_output=True, text=True)
    assert "resuming from" in rerun.stderr
    assert sha256(interrupted) == sha256(reference)
    assert not state.exists() and not list(interrupted.parent.glob("train_state*.safetensors"))


def test_state_of_another_configuration_is_ignored(tmp_path: Path) -> None:
    arch = Architecture("mlp", 1, 8, (1, 4, 4), 3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    resume = ResumeFile(tmp_path / "state.safetensors", every=1)
    train(arch, 1, TrainConfig(max_epochs=2, target_loss=0.0), (x, y), (x, y), resume=resume)
    longer = train(arch, 1, TrainConfig(max_epochs=3, target_loss=0.0, lr=0.05), (x, y), (x, y), resume=resume)
    fresh = train(arch, 1, TrainConfig(max_epochs=3, target_loss=0.0, lr=0.05), (x, y), (x, y))
    assert longer.steps == fresh.steps == 3  # 64 examples, batch 64: one step per epoch
    assert all(torch.equal(longer.state_dict[k], fresh.state_dict[k]) for k in fresh.state_dict)


def test_truncated_state_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    arch = Architecture("mlp", 1, 8, (1, 4, 4), 3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    resume = ResumeFile(tmp_path / "state.safetensors", every=1)
    config = TrainConfig(max_epochs=2, target_loss=0.0)
    first = train(arch, 1, config, (x, y), (x, y), resume=resume)
    saved = resume.tensors_path(2)  # the file the sidecar names after the second epoch
    saved.write_bytes(saved.read_bytes()[:100])  # as if killed while writing (without atomic rename)
    again = train(arch, 1, config, (x, y), (x, y), resume=resume)
    assert again.steps == first.steps
    assert all(torch.equal(again.state_dict[k], first.state_dict[k]) for k in first.state_dict)
    assert "checksum" in caplog.text  # rejected by its recorded checksum, not by luck


def test_a_kill_between_the_tensors_and_the_sidecar_keeps_the_previous_state(tmp_path: Path) -> None:
    arch = Architecture("mlp", 1, 8, (1, 4, 4), 3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    resume = ResumeFile(tmp_path / "state.safetensors", every=1)
    config = TrainConfig(max_epochs=2, target_loss=0.0)
    train(arch, 1, config, (x, y), (x, y), resume=resume)
    sidecar = tmp_path / "state.json"
    before = sidecar.read_text()
    resume.tensors_path(3).write_bytes(resume.tensors_path(2).read_bytes())  # epoch 3's tensors, then the kill
    assert sidecar.read_text() == before
    loaded = resume.load_state(json.loads(before)["fingerprint"])
    assert loaded is not None and loaded[1].epoch == 2  # the sidecar still names a complete, valid state


def test_a_block_job_writes_the_same_checkpoints_as_one_job_per_seed(digits: Path, tmp_path: Path) -> None:
    def train_cli(seeds: list[int], folder: str) -> list[Path]:
        outs = [tmp_path / folder / f"seed{s}" / "model.safetensors" for s in seeds]
        config = '{"max_epochs": 2, "target_loss": 0.0}'
        command = [sys.executable, "-m", "permlmc", "--threads", "1", "train-seeds", "--data", str(digits),
                   "--arch", "mlp", "--depth", "1", "--width", "16", "--config", config,
                   "--seed", *map(str, seeds), "--out", *map(str, outs)]
        subprocess.run(command, check=True, capture_output=True)
        return outs

    block = train_cli([4, 5, 6], "block")
    alone = train_cli([5], "alone")
    assert sha256(block[1]) == sha256(alone[0])
    meta = json.loads(block[1].with_suffix(".json").read_text())
    assert meta["engine"] == "stacked" and meta["block"] == [4, 5, 6] and meta["seed"] == 5
