"""Resumable training state: model, optimiser state, data-order RNG and epoch, saved atomically.

A training job killed by a walltime limit or preemption restarts from its last saved epoch, and (on CPU, same
thread count) ends bitwise identical to an uninterrupted run: everything the remaining epochs depend on is in
the state. A state whose fingerprint (architecture, seed, training config) differs from the job's is ignored.

The file holds ``model.<state-dict key>``, ``optimiser.<i>.<name>`` for every tensor of the optimiser's state of
a parameter (``i``: the parameter's position in ``model.parameters()``; SGD: ``momentum_buffer``; AdamW:
``exp_avg``, ``exp_avg_sq`` and ``step``) and ``rng.data_order``; :meth:`ResumeFile.save_state`/
:meth:`ResumeFile.load_state` read and write these tensors directly, for trainers that keep no ``nn.Module``/
optimiser per network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from permlmc.artifacts.files import ArtifactError, load_tensors, read_json, save_tensors, sidecar_path, write_json
from permlmc.types import StateDict

log = logging.getLogger("permlmc.training.resume")

MODEL_PREFIX = "model."
OPTIMISER_PREFIX = "optimiser."
RNG_KEY = "rng.data_order"


def optimiser_key(index: int, name: str) -> str:
    """Tensor name of state ``name`` of the ``index``-th parameter (in ``model.parameters()`` order)."""
    return f"{OPTIMISER_PREFIX}{index}.{name}"


def momentum_key(index: int) -> str:
    """Tensor name of the SGD momentum buffer of the ``index``-th parameter."""
    return optimiser_key(index, "momentum_buffer")


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
        tensors = {f"{MODEL_PREFIX}{k}": v for k, v in model.state_dict().items()}
        for i, entries in optimiser.state_dict()["state"].items():
            for name, value in entries.items():
                if value is not None:  # e.g. no momentum buffer at momentum 0
                    tensors[optimiser_key(i, name)] = torch.as_tensor(value)
        tensors[RNG_KEY] = order.get_state()
        self.save_state(tensors, state, fingerprint)

    def tensors_path(self, epoch: int) -> Path:
        """Where the tensors of the state after ``epoch`` go: one file per saved epoch, so that the sidecar (the
        last thing written) always names a complete file, whenever the job is killed."""
        return self.path.with_name(f"{self.path.stem}.epoch{epoch}{self.path.suffix}")

    def _tensor_files(self) -> list[Path]:
        return [self.path, *self.path.parent.glob(f"{self.path.stem}.epoch*{self.path.suffix}")]

    def save_state(self, tensors: Mapping[str, Tensor], state: TrainingState, fingerprint: dict[str, Any]) -> None:
        """Write ``tensors`` (named as in the module docstring) and ``state`` atomically: the tensors to a new file,
        then the sidecar naming it (the switch), then the older tensor files are removed."""
        target = self.tensors_path(state.epoch)
        digest = save_tensors(target, tensors)
        write_json(sidecar_path(self.path), {"fingerprint": fingerprint, "epoch": state.epoch, "steps": state.steps,
                                             "history": state.history, "sha256": digest, "tensors": target.name})
        for old in self._tensor_files():
            if old != target and old.exists():
                old.unlink()

    def load(
        self, model: nn.Module, optimiser: torch.optim.Optimizer, order: torch.Generator, fingerprint: dict[str, Any],
    ) -> TrainingState | None:
        """Restore a saved state into the given objects; ``None`` when there is no usable state."""
        loaded = self.load_state(fingerprint)
        if loaded is None:
            return None
        tensors, state = loaded
        model.load_state_dict(
            {k.removeprefix(MODEL_PREFIX): v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
        )
        per_parameter: dict[int, dict[str, Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(OPTIMISER_PREFIX):
                index, name = key.removeprefix(OPTIMISER_PREFIX).split(".", 1)
                per_parameter.setdefault(int(index), {})[name] = value
        # the optimiser's own loading puts each tensor where it keeps it (AdamW's step stays on the CPU)
        optimiser.load_state_dict({"state": per_parameter, "param_groups": optimiser.state_dict()["param_groups"]})
        order.set_state(tensors[RNG_KEY])
        return state

    def load_state(self, fingerprint: dict[str, Any]) -> tuple[StateDict, TrainingState] | None:
        """The saved tensors and state (on CPU); ``None`` when there is no usable state for ``fingerprint``."""
        if not sidecar_path(self.path).exists():
            return None
        try:
            meta = read_json(sidecar_path(self.path))
            tensors = load_tensors(self.path.with_name(meta["tensors"]), meta["sha256"])
        except (ArtifactError, KeyError, OSError) as exc:
            log.warning("ignoring unusable training state %s: %s", self.path, exc)
            return None
        if meta["fingerprint"] != fingerprint:
            log.warning("ignoring training state %s: it belongs to another configuration", self.path)
            return None
        log.info("resuming from %s at epoch %d", self.path, meta["epoch"])
        return tensors, TrainingState(int(meta["epoch"]), int(meta["steps"]), list(meta["history"]))

    def remove(self) -> None:
        for path in (sidecar_path(self.path), *self._tensor_files()):
            if os.path.exists(path):
                os.unlink(path)
