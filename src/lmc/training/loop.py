"""SGD training with the paper's protocol (Entezari et al. 2022, App. A.1, Table 1).

Data stay in memory as tensors and batches are slices of a per-epoch random order (a DataLoader per batch is
much slower for these small networks). Training stops when the epoch's mean training cross-entropy (the
running mean over its minibatches, as Keras reports it) reaches ``target_loss``, or after ``max_epochs``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmc import seeding
from lmc.evaluation import Metrics, evaluate, functional_forward
from lmc.models import Architecture, build_model
from lmc.training.resume import ResumeFile, TrainingState
from lmc.types import StateDict

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 0.01
    """Initial learning rate."""
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 3000
    target_loss: float = 0.01
    """Stop once an epoch's mean training cross-entropy is at or below this (nats)."""
    schedule: str = "constant"
    """``constant`` (MLPs) or ``cosine`` from ``lr`` to 0 over ``max_epochs`` (conv nets)."""

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"training.schedule {self.schedule!r} is unknown; choose one of {SCHEDULES}")
        for key in ("lr", "batch_size", "max_epochs"):
            if getattr(self, key) <= 0:
                raise ValueError(f"training.{key} must be positive, got {getattr(self, key)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    state_dict: StateDict
    history: list[dict[str, float]]
    train: Metrics
    test: Metrics
    epochs: int
    steps: int
    stopped_by: str
    """``target_loss`` or ``max_epochs``."""
    engine: str = "sequential"
    """What trained it: ``sequential`` (this module) or ``batched`` (:mod:`lmc.training.stacked`)."""


def initialise(arch: Architecture, seed: int) -> nn.Module:
    """The network of ``seed`` at initialisation (PyTorch's default init from a derived seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeding.derive(seed, seeding.INIT))
        return build_model(arch)


def _learning_rate(config: TrainConfig, epoch: int) -> float:
    if config.schedule == "cosine":
        return 0.5 * config.lr * (1 + math.cos(math.pi * epoch / config.max_epochs))
    return config.lr


def train(
    arch: Architecture,
    seed: int,
    config: TrainConfig,
    train_xy: tuple[Tensor, Tensor],
    test_xy: tuple[Tensor, Tensor],
    *,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    resume: ResumeFile | None = None,
) -> TrainResult:
    """Train network ``seed`` of ``arch``; same seed and thread count give a bitwise-identical result on CPU.

    With ``resume``, the state is saved every ``resume.every`` epochs and a run restarts from the saved state,
    ending with the same weights as an uninterrupted run.
    """
    model = initialise(arch, seed).to(device)
    x, y = (t.to(device) for t in train_xy)
    optimiser = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    order = seeding.generator(seed, seeding.DATA_ORDER)
    # JSON round trip: the fingerprint is compared with the one read back from a state's sidecar
    fingerprint = json.loads(json.dumps({"architecture": arch.to_dict(), "seed": seed, "training": config.to_dict()}))
    saved = resume.load(model, optimiser, order, fingerprint) if resume else None
    history: list[dict[str, float]] = saved.history if saved else []
    steps, stopped_by, start = (saved.steps, "max_epochs", saved.epoch) if saved else (0, "max_epochs", 0)
    if history and history[-1]["train_loss"] <= config.target_loss:
        stopped_by, start = "target_loss", config.max_epochs  # the saved run had already stopped
    for epoch in range(start, config.max_epochs):
        lr = _learning_rate(config, epoch)
        for group in optimiser.param_groups:
            group["lr"] = lr
        model.train()
        loss_sum, wrong = torch.zeros((), dtype=torch.float64, device=device), torch.zeros((), device=device)
        for batch in torch.randperm(len(x), generator=order).to(device).split(config.batch_size):
            logits = model(x[batch])
            loss = F.cross_entropy(logits, y[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps += 1
            loss_sum += loss.detach().double() * len(batch)
            wrong += (logits.detach().argmax(1) != y[batch]).sum()
        record = {"epoch": epoch + 1, "lr": lr, "train_loss": float(loss_sum) / len(x),
                  "train_error": float(wrong) / len(x)}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if record["train_loss"] <= config.target_loss:
            stopped_by = "target_loss"
        if resume is not None and (epoch + 1) % resume.every == 0:
            resume.save(model, optimiser, order, TrainingState(epoch + 1, steps, history), fingerprint)
        if stopped_by == "target_loss":
            break
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    forward = functional_forward(model)
    params = {k: v.to(device) for k, v in state.items()}
    train_metrics = evaluate(forward, params, x, y)
    test_x, test_y = (t.to(device) for t in test_xy)
    test_metrics = evaluate(forward, params, test_x, test_y)
    return TrainResult(state, history, train_metrics, test_metrics, len(history), steps, stopped_by)
