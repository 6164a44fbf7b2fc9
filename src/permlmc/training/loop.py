"""SGD training with the paper's protocol (Entezari et al. 2022, App. A.1, Table 1), and AdamW with a warm-up and
cosine decay, the usual protocol of Vision Transformers (Loshchilov & Hutter 2019; Dosovitskiy et al. 2021).

Data stay in memory as tensors and batches are slices of a per-epoch random order (a DataLoader per batch is
much slower for these small networks). Training stops when the epoch's mean training cross-entropy (the
running mean over its minibatches, as Keras reports it) reaches ``target_loss``, or after ``max_epochs``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from permlmc import seeding
from permlmc.evaluation import Forward, Metrics, evaluate, functional_forward, wrong_count
from permlmc.models import Architecture, build_model
from permlmc.training.resume import ResumeFile, TrainingState
from permlmc.training.verdict import require_finite
from permlmc.types import StateDict

SCHEDULES = ("constant", "cosine", "warmup_cosine")
OPTIMIZERS = ("sgd", "adamw")
NEUTRAL = {"optimizer": "sgd", "warmup_epochs": 0}
"""Keys whose value here trains as a config without them does (SGD, no warm-up): :meth:`TrainConfig.to_dict` leaves
them out at these values, so a resume fingerprint or sidecar written without them still matches."""


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 0.01
    """Initial (``warmup_cosine``: peak) learning rate."""
    momentum: float = 0.9
    """SGD momentum; ignored by ``adamw`` (its betas are PyTorch's defaults, 0.9 and 0.999)."""
    weight_decay: float = 0.0
    """L2 penalty added to the gradient (``sgd``) or decoupled decay ``lr * weight_decay`` per step (``adamw``)."""
    batch_size: int = 64
    max_epochs: int = 3000
    target_loss: float = 0.01
    """Stop once an epoch's mean training cross-entropy is at or below this (nats)."""
    schedule: str = "constant"
    """``constant`` (MLPs), ``cosine`` from ``lr`` to 0 over ``max_epochs`` (conv nets), or ``warmup_cosine``
    (ViTs): ``warmup_epochs`` of linear warm-up, then cosine to 0 (:func:`learning_rate`)."""
    optimizer: str = "sgd"
    """``sgd`` (``torch.optim.SGD`` with ``momentum``; every engine) or ``adamw`` (``torch.optim.AdamW``; the
    sequential engine: MLPs asking for it fall back to it, :func:`permlmc.training.stacked.choose_engine`)."""
    warmup_epochs: int = 0
    """Epochs of linear warm-up of ``warmup_cosine`` (0: none, plain cosine)."""

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"training.schedule {self.schedule!r} is unknown; choose one of {SCHEDULES}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"training.optimizer {self.optimizer!r} is unknown; choose one of {OPTIMIZERS}")
        for key in ("lr", "batch_size", "max_epochs"):
            if getattr(self, key) <= 0:
                raise ValueError(f"training.{key} must be positive, got {getattr(self, key)}")
        if not 0 <= self.warmup_epochs < self.max_epochs:
            raise ValueError(f"training.warmup_epochs must be >= 0 and < training.max_epochs ({self.max_epochs}), "
                             f"got {self.warmup_epochs}")
        if self.warmup_epochs and self.schedule != "warmup_cosine":
            raise ValueError(f"training.warmup_epochs is {self.warmup_epochs} but training.schedule is "
                             f"{self.schedule!r}; warm-up belongs to schedule 'warmup_cosine' (or set it to 0)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Every key, except those of :data:`NEUTRAL` at their neutral values."""
        return {k: v for k, v in asdict(self).items() if k not in NEUTRAL or v != NEUTRAL[k]}


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
    """What trained it: ``sequential`` (this module) or ``stacked`` (:mod:`permlmc.training.stacked`)."""


def initialise(arch: Architecture, seed: int) -> nn.Module:
    """The network of ``seed`` at initialisation (PyTorch's default init from a derived seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeding.derive(seed, seeding.INIT))
        return build_model(arch)


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate of 0-based ``epoch`` ``e`` (``T = max_epochs``, ``W = warmup_epochs``): ``constant``
    ``lr``; ``cosine`` ``lr (1 + cos(pi e / T)) / 2``; ``warmup_cosine`` ``lr (e + 1) / W`` for ``e < W`` (so
    ``lr / W`` first and ``lr`` at ``e = W - 1``), then ``lr (1 + cos(pi (e - W) / (T - W))) / 2`` (``lr`` at
    ``e = W``, towards 0 at ``T``; ``W = 0`` is ``cosine``)."""
    if config.schedule == "constant":
        return config.lr
    warm = config.warmup_epochs  # 0 unless warmup_cosine (TrainConfig checks)
    if epoch < warm:
        return config.lr * (epoch + 1) / warm
    return 0.5 * config.lr * (1 + math.cos(math.pi * (epoch - warm) / (config.max_epochs - warm)))


def build_optimiser(params: Iterable[Tensor], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser of ``config.optimizer`` over ``params`` at the initial ``lr`` (the loop sets each epoch's)."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def fingerprint(arch: Architecture, seed: int, config: TrainConfig, engine: str | None = None) -> dict[str, Any]:
    """What a saved training state must match to be resumed (an engine's own rounding: its name too)."""
    found = {"architecture": arch.to_dict(), "seed": seed, "training": config.to_dict()}
    if engine is not None:
        found["engine"] = engine
    # JSON round trip: compared with the fingerprint read back from a state's sidecar
    return dict(json.loads(json.dumps(found)))


@dataclass
class Run:
    """One seed's training as the loop sees it: its history so far and why it stopped."""

    seed: int
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    start: int = 0
    """The 0-based epoch it continues from (a resumed run's saved epoch)."""
    stopped_by: str = "max_epochs"
    resume: ResumeFile | None = None

    def resumed(self, state: TrainingState, config: TrainConfig) -> None:
        """Continue from a saved ``state``; a run saved after it met the stopping rule has nothing left to do."""
        self.history, self.steps, self.start = state.history, state.steps, state.epoch
        if self.history and self.history[-1]["train_loss"] <= config.target_loss:
            self.stopped_by, self.start = "target_loss", config.max_epochs


class Engine(Protocol):
    """What trains the runs of one loop: one epoch of every active run, saving a run, and letting runs go."""

    def epoch(self, lr: float, runs: Sequence[Run]) -> list[tuple[int, dict[str, float]]]:
        """Train every run of ``runs`` for one epoch at ``lr``; per run, the steps taken and its record's
        measurements (at least ``train_loss`` and ``train_error``, means over the epoch's examples)."""
        ...

    def save(self, index: int, run: Run, epoch: int) -> None:
        """Save run ``index`` of the active ones in its resume file, after ``epoch`` epochs."""
        ...

    def leave(self, indices: Sequence[int]) -> None:
        """The active runs at ``indices`` have stopped: the engine lets them go (in that order)."""
        ...


def run_epochs(
    config: TrainConfig, runs: Sequence[Run], engine: Engine, *,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None, abort: Callable[[], bool] | None = None,
    network: str = "network",
) -> None:
    """The training loop of every engine (paper App. A.1): epochs from the runs' common ``start`` to
    ``max_epochs``, the learning-rate schedule, one record per run and epoch (``epoch``, ``lr`` and the engine's
    measurements) reported to ``on_epoch(seed, record)``, the stopping rule (an epoch's mean train cross-entropy at
    or below ``target_loss``: that run leaves, the others go on), and the resume cadence (a run saves its state
    every ``resume.every`` epochs and when it stops). ``abort()`` true ends the loop before the next epoch. A
    non-finite epoch loss raises :class:`~permlmc.training.verdict.TrainingDiverged` naming ``network``, the seed,
    the epoch and the learning rate, before that epoch is recorded or saved."""
    active = [run for run in runs if run.start < config.max_epochs]
    starts = {run.start for run in active}
    if len(starts) > 1:
        raise ValueError(f"runs of one loop must continue from one epoch, got {sorted(starts)}")
    for epoch in range(starts.pop() if starts else config.max_epochs, config.max_epochs):
        if not active or (abort is not None and abort()):
            return
        lr = learning_rate(config, epoch)
        stopped = []
        for k, (run, (steps, measured)) in enumerate(zip(active, engine.epoch(lr, active), strict=True)):
            require_finite(measured["train_loss"], f"{network} seed {run.seed}", epoch + 1, lr)
            run.steps += steps
            record = {"epoch": epoch + 1, "lr": lr, **measured}
            run.history.append(record)
            if on_epoch is not None:
                on_epoch(run.seed, record)
            if record["train_loss"] <= config.target_loss:
                run.stopped_by = "target_loss"
                stopped.append(k)
            # a stopped run saves its final state at once, so that a rerun skips it
            if run.resume is not None and ((epoch + 1) % run.resume.every == 0 or k in stopped):
                engine.save(k, run, epoch + 1)
        if stopped:
            engine.leave(stopped)
            active = [run for k, run in enumerate(active) if k not in stopped]


def run_one(config: TrainConfig, run: Run, engine: Engine, *, on_epoch: Callable[[dict[str, float]], None] | None,
            network: str) -> None:
    """:func:`run_epochs` of the single ``run``, each record reported to ``on_epoch(record)``."""
    run_epochs(config, [run], engine, on_epoch=None if on_epoch is None else lambda _, record: on_epoch(record),
               network=network)


def result_of(
    run: Run, forward: Forward, params: StateDict, train_xy: tuple[Tensor, Tensor], test_xy: tuple[Tensor, Tensor],
    device: torch.device | str, engine: str = "sequential",
) -> TrainResult:
    """The result of ``run``, trained to ``params`` by ``engine`` (``sequential`` or ``stacked``): its history and
    stopping reason, and the train and test metrics of ``params`` (evaluated on ``device``)."""
    on_device = {k: v.to(device) for k, v in params.items()}
    (x, y), (test_x, test_y) = ((t.to(device) for t in xy) for xy in (train_xy, test_xy))
    train_metrics, test_metrics = evaluate(forward, on_device, x, y), evaluate(forward, on_device, test_x, test_y)
    return TrainResult(params, run.history, train_metrics, test_metrics, len(run.history), run.steps, run.stopped_by,
                       engine)


def minibatch_epoch(
    optimiser: torch.optim.Optimizer, lr: float, y: Tensor, order: torch.Generator, batch_size: int,
    logits_of: Callable[[Tensor], Tensor], penalty: Callable[[], Tensor] | None = None,
) -> tuple[int, dict[str, float]]:
    """One epoch of ``optimiser`` steps at ``lr``: minibatches of example indices in an order drawn from ``order``,
    each minimising the cross-entropy of ``logits_of(batch)`` against ``y[batch]`` (plus ``penalty()``). Returns the
    steps taken and the record: the epoch's mean train cross-entropy (without the penalty: what the stopping rule
    reads) and error over the minibatches as trained."""
    for group in optimiser.param_groups:
        group["lr"] = lr
    device = y.device
    loss_sum, wrong = torch.zeros((), dtype=torch.float64, device=device), torch.zeros((), device=device)
    steps = 0
    for batch in torch.randperm(len(y), generator=order).to(device).split(batch_size):
        logits = logits_of(batch)
        loss = F.cross_entropy(logits, y[batch])
        optimiser.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty()).backward()
        optimiser.step()
        steps += 1
        loss_sum += loss.detach().double() * len(batch)
        wrong += wrong_count(logits.detach(), y[batch])
    return steps, {"train_loss": float(loss_sum) / len(y), "train_error": float(wrong) / len(y)}


class SequentialEngine:
    """One network as a ``torch.nn.Module`` with ``torch.optim.SGD`` or ``AdamW`` (:func:`build_optimiser`): the
    reference engine, any family and optimiser."""

    def __init__(self, model: nn.Module, config: TrainConfig, x: Tensor, y: Tensor, order: torch.Generator,
                 fingerprint: dict[str, Any]) -> None:
        self.model, self.x, self.y, self.order, self.fingerprint = model, x, y, order, fingerprint
        self.batch_size = config.batch_size
        self.optimiser = build_optimiser(model.parameters(), config)

    def epoch(self, lr: float, runs: Sequence[Run]) -> list[tuple[int, dict[str, float]]]:
        self.model.train()
        return [minibatch_epoch(self.optimiser, lr, self.y, self.order, self.batch_size,
                                lambda batch: self.model(self.x[batch]))]

    def save(self, index: int, run: Run, epoch: int) -> None:
        assert run.resume is not None
        run.resume.save(self.model, self.optimiser, self.order, TrainingState(epoch, run.steps, run.history),
                        self.fingerprint)

    def leave(self, indices: Sequence[int]) -> None:
        pass


def train(
    arch: Architecture, seed: int, config: TrainConfig, train_xy: tuple[Tensor, Tensor], test_xy: tuple[Tensor, Tensor],
    *, device: torch.device | str = "cpu", on_epoch: Callable[[dict[str, float]], None] | None = None,
    resume: ResumeFile | None = None,
) -> TrainResult:
    """Train network ``seed`` of ``arch``; same seed and thread count give a bitwise-identical result on CPU.

    With ``resume``, the state is saved every ``resume.every`` epochs (and when training stops) and a run restarts
    from the saved state, ending with the same weights as an uninterrupted run.
    """
    model = initialise(arch, seed).to(device)
    x, y = (t.to(device) for t in train_xy)
    stamp = fingerprint(arch, seed, config)
    engine = SequentialEngine(model, config, x, y, seeding.generator(seed, seeding.DATA_ORDER), stamp)
    run = Run(seed, resume=resume)
    saved = resume.load(model, engine.optimiser, engine.order, stamp) if resume else None
    if saved is not None:
        run.resumed(saved, config)
    run_one(config, run, engine, on_epoch=on_epoch, network=arch.name)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return result_of(run, functional_forward(model), state, train_xy, test_xy, device)
