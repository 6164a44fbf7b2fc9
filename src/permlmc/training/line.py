"""Learning a line of networks (Wortsman et al. 2021, "Learning neural network subspaces"; paper App. C, Table 3).

Two endpoints ``theta_1`` and ``theta_2`` are trained together so that every network on the segment
``theta(a) = (1 - a) theta_1 + a theta_2`` has low loss. At every minibatch one ``a ~ U[0, 1]`` is drawn, the
loss of ``theta(a)`` is computed and its gradient flows into both endpoints (``(1 - a) g`` and ``a g``). The
regulariser ``beta * cos^2(theta_1, theta_2)`` (squared cosine similarity of the flattened trainable parameters,
``beta = 1`` as in Wortsman et al.) keeps the endpoints apart, so the line's ends stay functionally diverse.

Starting the line from two separately trained networks, B aligned to A by a permutation search, gives the
paper's "FD + SL" row (``init``); starting from two random initialisations gives "SL".

Seeds: ``theta_1`` starts as :func:`permlmc.training.loop.initialise` (the initialisation of network ``seed``),
``theta_2`` from the initialisation stream's second member ``derive(seed, INIT, 1)``; the data order is that of
:func:`permlmc.training.loop.train` (``DATA_ORDER``) and the sampled ``a`` come from ``generator(seed, DATA_ORDER, 1)``.

BatchNorm: training uses batch statistics at the sampled point; the running statistics of each endpoint, and of
every point evaluated, are re-estimated afterwards on the whole training set in minibatches of the training batch
size (:func:`permlmc.interpolation.batchnorm.reset_statistics`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from permlmc import seeding
from permlmc.evaluation import Metrics, evaluate, functional_forward
from permlmc.interpolation.batchnorm import batchnorm_layers, reset_statistics
from permlmc.interpolation.path import interpolate
from permlmc.models import Architecture, build_model
from permlmc.training.loop import Run, TrainConfig, build_optimiser, initialise, minibatch_epoch, run_one
from permlmc.types import StateDict

EVALUATED_POINTS = (0.0, 0.5, 1.0)
"""Points of the line whose train and test metrics a :class:`LineResult` holds (ends and midpoint)."""


@dataclass
class LineResult:
    theta_1: StateDict
    """The line's end at ``a = 0`` (BatchNorm statistics re-estimated for it)."""
    theta_2: StateDict
    """The line's end at ``a = 1``."""
    history: list[dict[str, float]]
    """Per epoch: ``epoch``, ``lr``, ``train_loss`` and ``train_error`` (means over the sampled points),
    ``cosine`` (of the endpoints at the epoch's end)."""
    train: dict[float, Metrics]
    """Metrics of ``theta(a)`` for every ``a`` in :data:`EVALUATED_POINTS`."""
    test: dict[float, Metrics]
    epochs: int
    steps: int
    stopped_by: str
    """``target_loss`` or ``max_epochs``."""


def line_endpoints(
    arch: Architecture, seed: int, init: tuple[StateDict, StateDict] | None = None
) -> tuple[StateDict, StateDict]:
    """The endpoints a line starts from: copies of ``init``, or two initialisations derived from ``seed``."""
    if init is not None:
        shapes = {k: v.shape for k, v in build_model(arch).state_dict().items()}
        for i, theta in enumerate(init, start=1):
            if {k: v.shape for k, v in theta.items()} != shapes:
                raise ValueError(f"init endpoint {i} does not fit the state dict of {arch.name}")
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeding.derive(seed, seeding.INIT, 1))
            second = build_model(arch)
        init = (initialise(arch, seed).state_dict(), second.state_dict())
    first, second_state = ({k: v.detach().clone() for k, v in theta.items()} for theta in init)
    return first, second_state


def cosine_similarity(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """``<a, b> / (|a| |b|)`` of the concatenations of two matching tensor lists (differentiable; scalar)."""
    dot = torch.stack([(x * y).sum() for x, y in zip(a, b, strict=True)]).sum()
    norm_a = torch.stack([(x * x).sum() for x in a]).sum()
    norm_b = torch.stack([(y * y).sum() for y in b]).sum()
    return dot / torch.sqrt(norm_a * norm_b)


def parameter_cosine(model: nn.Module, a: StateDict, b: StateDict) -> float:
    """Cosine similarity of two state dicts over ``model``'s trainable parameters (buffers excluded)."""
    keys = [k for k, _ in model.named_parameters()]
    return float(cosine_similarity([a[k] for k in keys], [b[k] for k in keys]))


def train_line(
    arch: Architecture, seed: int, config: TrainConfig, train_xy: tuple[Tensor, Tensor], test_xy: tuple[Tensor, Tensor],
    *, init: tuple[StateDict, StateDict] | None = None, beta: float = 1.0, device: torch.device | str = "cpu",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> LineResult:
    """Train the line ``theta(a)``, ``a ~ U[0, 1]`` per minibatch, minimising ``CE(theta(a)) + beta cos^2``.

    Same protocol as :func:`permlmc.training.loop.train` (optimiser, lr schedule, batch size, data order,
    stopping when the epoch's mean cross-entropy at the sampled points reaches ``config.target_loss``); same seed and
    thread count give bitwise-identical endpoints on CPU. ``init`` (two state dicts) is left untouched.
    """
    model = build_model(arch).to(device)
    x, y = (t.to(device) for t in train_xy)
    engine = _LineEngine(model, line_endpoints(arch, seed, init), config, x, y, seed, beta)
    run = Run(seed)
    model.train()  # BatchNorm normalises with the batch statistics of the sampled point
    run_one(config, run, engine, on_epoch=on_epoch, network=f"{arch.name} line")
    batches = list(x.split(config.batch_size))
    thetas = [_finish(model, dict(zip(engine.keys, end, strict=True)), batches) for end in engine.ends]
    train_metrics, test_metrics = _evaluate_points(model, thetas[0], thetas[1], batches, (x, y), test_xy)
    theta_1, theta_2 = ({k: v.cpu() for k, v in theta.items()} for theta in thetas)
    return LineResult(theta_1, theta_2, run.history, train_metrics, test_metrics, len(run.history), run.steps,
                      run.stopped_by)


class _LineEngine:
    """The two endpoints as leaf tensors under one optimiser: each minibatch trains the point ``theta(a)`` of a fresh
    ``a ~ U[0, 1]``. Lines keep no resume state."""

    def __init__(self, model: nn.Module, starts: tuple[StateDict, StateDict], config: TrainConfig, x: Tensor,
                 y: Tensor, seed: int, beta: float) -> None:
        self.model, self.x, self.y, self.beta, self.batch_size = model, x, y, beta, config.batch_size
        self.keys = [k for k, _ in model.named_parameters()]
        self.ends = [[starts[i][k].to(x.device).requires_grad_(True) for k in self.keys] for i in (0, 1)]
        self.optimiser = build_optimiser(self.ends[0] + self.ends[1], config)
        self.order = seeding.generator(seed, seeding.DATA_ORDER)
        self.alphas = seeding.generator(seed, seeding.DATA_ORDER, 1)

    def epoch(self, lr: float, runs: Sequence[Run]) -> list[tuple[int, dict[str, float]]]:
        ends, beta = self.ends, self.beta

        def logits_of(batch: Tensor) -> Tensor:
            a = float(torch.rand((), generator=self.alphas))
            point = {k: torch.lerp(p, q, a) for k, p, q in zip(self.keys, ends[0], ends[1], strict=True)}
            return functional_call(self.model, point, (self.x[batch],))

        steps, record = minibatch_epoch(self.optimiser, lr, self.y, self.order, self.batch_size, logits_of,
                                        (lambda: beta * cosine_similarity(ends[0], ends[1]) ** 2) if beta else None)
        with torch.no_grad():
            record["cosine"] = float(cosine_similarity(ends[0], ends[1]))
        return [(steps, record)]

    def save(self, index: int, run: Run, epoch: int) -> None:
        raise ValueError("a line keeps no resume state")

    def leave(self, indices: Sequence[int]) -> None:
        pass


def point_on_line(
    model: nn.Module, theta_1: StateDict, theta_2: StateDict, a: float, batches: Sequence[Tensor] = ()
) -> StateDict:
    """``theta(a)``; with BatchNorm, its running statistics re-estimated on ``batches`` (required then)."""
    params = interpolate(theta_1, theta_2, a)
    if not batchnorm_layers(model):
        return params
    if not batches:
        raise ValueError("a BatchNorm network's point on a line needs training batches to estimate statistics on")
    return reset_statistics(model, params, batches)


def _finish(model: nn.Module, params: StateDict, batches: Sequence[Tensor]) -> StateDict:
    """A full state dict of trained ``params``: buffers from ``model``, BatchNorm statistics re-estimated."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state.update({k: v.detach().clone() for k, v in params.items()})
    return reset_statistics(model, state, batches) if batchnorm_layers(model) else state


def _evaluate_points(
    model: nn.Module, theta_1: StateDict, theta_2: StateDict, batches: Sequence[Tensor],
    train_xy: tuple[Tensor, Tensor], test_xy: tuple[Tensor, Tensor],
) -> tuple[dict[float, Metrics], dict[float, Metrics]]:
    forward = functional_forward(model)
    device = next(iter(theta_1.values())).device
    test_x, test_y = (t.to(device) for t in test_xy)
    train_metrics, test_metrics = {}, {}
    for a in EVALUATED_POINTS:
        params = point_on_line(model, theta_1, theta_2, a, batches)
        train_metrics[a] = evaluate(forward, params, *train_xy)
        test_metrics[a] = evaluate(forward, params, test_x, test_y)
    return train_metrics, test_metrics
