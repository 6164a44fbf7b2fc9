"""Evaluate a network given as (module skeleton, state dict): no module is rebuilt per evaluation.

Several networks of one architecture can be evaluated together: their state dicts stacked entry by entry along
a new leading axis of size K (:func:`stack_states`) and run by one vectorised forward (:func:`forward_stacked`,
``torch.func.vmap`` over ``functional_call``: a linear layer becomes a batched matrix product, a convolution a
grouped one). Everything runs on the device of the tensors given; results stay there until the final ``float``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from permlmc.types import StateDict

Forward = Callable[[StateDict, Tensor], Tensor]
"""``forward(params, x) -> logits`` of shape (N, classes)."""

StackedForward = Callable[[StateDict, Tensor], Tensor]
"""``forward(stacked, x) -> logits`` of shape (K, N, classes): K networks (every entry of ``stacked`` has a
leading axis of size K) on the same inputs ``x`` of shape (N, ...)."""


@dataclass(frozen=True)
class Metrics:
    loss: float
    """Mean cross-entropy (nats)."""
    error: float
    """Fraction of misclassified examples, in [0, 1]."""


def functional_forward(model: nn.Module) -> Forward:
    """Wrap ``model`` (put in eval mode: BatchNorm uses the running statistics in ``params``)."""
    model.eval()

    def forward(params: StateDict, x: Tensor) -> Tensor:
        logits: Tensor = functional_call(model, params, (x,))
        return logits

    return forward


def forward_stacked(model: nn.Module) -> StackedForward:
    """:func:`functional_forward` vectorised over a leading network axis of the parameters (not of ``x``)."""
    single = functional_forward(model)
    stacked: StackedForward = vmap(single, in_dims=(0, None))
    return stacked


def stack_states(states: Sequence[StateDict]) -> StateDict:
    """``{key: (K, *shape)}`` from K state dicts of one architecture."""
    return {key: torch.stack([state[key] for state in states]) for key in states[0]}


def stack_size(stacked: StateDict) -> int:
    """K, the number of networks in a stacked state dict."""
    return len(next(iter(stacked.values())))


METRICS = ("error", "loss")
"""What :func:`measure` computes: the fraction misclassified or the mean cross-entropy (nats)."""


def _example_dim(logits: Tensor, class_dim: int) -> tuple[int, int]:
    """(class dim, example dim) of ``logits``: (N, classes) or (classes, N), with an optional leading K axis."""
    if logits.ndim not in (2, 3):
        raise ValueError(f"logits must be (N, classes) or (K, N, classes) in some order, got {tuple(logits.shape)}")
    class_dim %= logits.ndim
    if class_dim < logits.ndim - 2:
        raise ValueError(f"class_dim {class_dim} is the network axis of logits of shape {tuple(logits.shape)}")
    return class_dim, 2 * logits.ndim - 3 - class_dim


def loss_sum(logits: Tensor, y: Tensor, class_dim: int = -1) -> Tensor:
    """Cross-entropy summed over the examples, float64: a scalar for one network's logits, (N, classes) or
    (classes, N); a (K,) tensor for K networks' (K, N, classes) or (K, classes, N). The sum itself runs in the
    logits' dtype, as ``F.cross_entropy`` sums."""
    class_dim, example_dim = _example_dim(logits, class_dim)
    if logits.ndim == 2 and class_dim == 1:
        return F.cross_entropy(logits, y, reduction="sum").double()
    stacked = logits if logits.ndim == 3 else logits.unsqueeze(0)  # (K, ., .)
    if example_dim < class_dim:
        stacked = stacked.transpose(1, 2)  # (K, classes, N): the class axis where cross_entropy takes it
    losses = F.cross_entropy(stacked, y.expand(len(stacked), -1), reduction="none")  # (K, N)
    totals = losses.sum(1).double()
    return totals if logits.ndim == 3 else totals[0]


def wrong_count(logits: Tensor, y: Tensor, class_dim: int = -1) -> Tensor:
    """Examples whose ``argmax`` over classes (the first maximal class on exact ties) is not ``y``: an int64
    scalar, or (K,) for K networks; shapes as in :func:`loss_sum`.

    On the CPU the count comes from the maximum over classes (``argmax`` over a non-contiguous class axis is
    several times slower there), and ``argmax`` itself settles logits with exact ties."""
    class_dim, example_dim = _example_dim(logits, class_dim)
    if logits.device.type != "cpu":
        return (logits.argmax(dim=class_dim) != y).sum(dim=-1)
    shape = [1] * logits.ndim
    shape[example_dim] = len(y)
    index = y.view(shape)
    if logits.ndim == 3:  # one row of classes picked per network
        index = index.expand(len(logits), *shape[1:])
    picked = logits.gather(class_dim, index)
    top = logits.amax(dim=class_dim, keepdim=True)
    if int((logits == top).sum()) > top.numel():  # some example's maximum is attained by several classes
        return (logits.argmax(dim=class_dim) != y).sum(dim=-1)
    return (picked < top).squeeze(class_dim).sum(dim=-1)


def measure(logits: Tensor, y: Tensor, metric: str, class_dim: int = -1) -> Tensor:
    """Mean error or cross-entropy (``metric`` in :data:`METRICS`) of logits shaped as in :func:`loss_sum`:
    float64, a scalar or (K,), on the logits' device."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    n = max(len(y), 1)
    total = loss_sum(logits, y, class_dim) if metric == "loss" else wrong_count(logits, y, class_dim).double()
    return total / n


@torch.no_grad()
def logits_of(forward: Forward, params: StateDict, x: Tensor, batch_size: int = 4096) -> Tensor:
    """The logits (N, classes) of ``params`` on all of ``x``, in chunks of ``batch_size``."""
    return torch.cat([forward(params, x[start : start + batch_size]) for start in range(0, len(x), batch_size)])


@torch.no_grad()
def evaluate(forward: Forward, params: StateDict, x: Tensor, y: Tensor, batch_size: int = 4096) -> Metrics:
    """Mean cross-entropy and error of ``params`` on ``(x, y)``, in chunks of ``batch_size``."""
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        logits = forward(params, x[start : start + batch_size])
        target = y[start : start + batch_size]
        total_loss += loss_sum(logits, target)
        wrong += wrong_count(logits, target)
    n = max(len(x), 1)
    return Metrics(loss=float(total_loss) / n, error=float(wrong) / n)


@torch.no_grad()
def evaluate_stacked(
    forward: StackedForward, stacked: StateDict, x: Tensor, y: Tensor, batch_size: int = 4096
) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy and error of each of the K networks in ``stacked`` on ``(x, y)``.

    Returns two float64 tensors of shape (K,) on the device of ``x`` (no host synchronisation: the caller
    converts once, at the end). A forward covers ``batch_size`` rows in all, ``batch_size // K`` examples for
    each network, so activation memory is that of :func:`evaluate` with the same ``batch_size``.
    """
    k = stack_size(stacked)
    chunk = max(1, batch_size // k)
    total_loss = torch.zeros(k, dtype=torch.float64, device=x.device)
    wrong = torch.zeros(k, dtype=torch.int64, device=x.device)
    for start in range(0, len(x), chunk):
        logits = forward(stacked, x[start : start + chunk])  # (K, n, classes)
        target = y[start : start + chunk]
        total_loss += loss_sum(logits, target)
        wrong += wrong_count(logits, target)
    n = max(len(x), 1)
    return total_loss / n, wrong.double() / n


def max_logit_difference(forward: Forward, a: StateDict, b: StateDict, x: Tensor) -> float:
    """max |f_a(x) - f_b(x)| over a batch: zero (up to rounding) when a and b are the same function."""
    with torch.no_grad():
        return float((forward(a, x) - forward(b, x)).abs().max())
