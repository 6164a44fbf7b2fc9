"""Resumable training state: model, optimiser momenta, data-order RNG and epoch, saved atomically.

A training job killed by a walltime limit or preemption restarts from its last saved epoch, and (on CPU, same
thread count) ends bitwise identical to an uninterrupted run: everything the remaining epochs depend on is in
the state. A state whose fingerprint (architecture, seed, training config) differs from the job's is ignored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmc.io import ArtifactError, load_tensors, read_json, save_tensors, sidecar_path, write_json

log = logging.getLogger("lmc.resume")


@dataclass(frozen=True)
class TrainingState:
    epoch: int
    """Epochs completed."""
    steps: int
    history: list[dict[str, float]]


@dataclass(frozen=True)
class ResumeFile:
    """Where a training job keeps its state, and how often (in epochs) it saves it."""

    path: Path
    every: int = 1

    def save(
        self, model: nn.Module, optimiser: torch.optim.Optimizer, order: torch.Generator, state: TrainingState,
        fingerprint: dict[str, Any],
    ) -> None:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        for i, param in enumerate(p for group in optimiser.param_groups for p in group["params"]):
            buffer = optimiser.state.get(param, {}).get("momentum_buffer")
            if buffer is not None:
                tensors[f"optimiser.{i}.momentum_buffer"] = buffer
        tensors["rng.data_order"] = order.get_state()
        digest = save_tensors(self.path, tensors)
        # The sidecar is written second: a kill between the two leaves a checksum mismatch, i.e. no valid state.
        write_json(sidecar_path(self.path), {"fingerprint": fingerprint, "epoch": state.epoch, "steps": state.steps,
                                             "history": state.history, "sha256": digest})

    def load(
        self, model: nn.Module, optimiser: torch.optim.Optimizer, order: torch.Generator, fingerprint: dict[str, Any],
    ) -> TrainingState | None:
        """Restore a saved state into the given objects; ``None`` when there is no usable state."""
        if not (self.path.exists() and sidecar_path(self.path).exists()):
            return None
        try:
            meta = read_json(sidecar_path(self.path))
            tensors = load_tensors(self.path, meta["sha256"])
        except (ArtifactError, KeyError) as exc:
            log.warning("ignoring unusable training state %s: %s", self.path, exc)
            return None
        if meta["fingerprint"] != fingerprint:
            log.warning("ignoring training state %s: it belongs to another configuration", self.path)
            return None
        model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
        for i, param in enumerate(p for group in optimiser.param_groups for p in group["params"]):
            buffer = tensors.get(f"optimiser.{i}.momentum_buffer")
            if buffer is not None:
                optimiser.state[param]["momentum_buffer"] = buffer.to(param.device)
        order.set_state(tensors["rng.data_order"])
        log.info("resuming from %s at epoch %d", self.path, meta["epoch"])
        return TrainingState(int(meta["epoch"]), int(meta["steps"]), list(meta["history"]))

    def remove(self) -> None:
        for path in (self.path, sidecar_path(self.path)):
            if os.path.exists(path):
                os.unlink(path)
