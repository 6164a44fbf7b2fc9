"""Evaluate a network given as (module skeleton, state dict): no module is rebuilt per evaluation.

Several networks of one architecture can be evaluated together: their state dicts stacked entry by entry along
a new leading axis of size K (:func:`stack_states`) and run by one vectorised forward (:func:`stacked_forward`,
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

from lmc.types import StateDict

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


def stacked_forward(model: nn.Module) -> StackedForward:
    """:func:`functional_forward` vectorised over a leading network axis of the parameters (not of ``x``)."""
    single = functional_forward(model)
    stacked: StackedForward = vmap(single, in_dims=(0, None))
    return stacked


def stack_states(states: Sequence[StateDict]) -> StateDict:
    """``{key: (K, *shape)}`` from K state dicts of one architecture."""
    return {key: torch.stack([state[key] for state in states]) for key in states[0]}


def stacked_size(stacked: StateDict) -> int:
    """K, the number of networks in a stacked state dict."""
    return len(next(iter(stacked.values())))


@torch.no_grad()
def evaluate(forward: Forward, params: StateDict, x: Tensor, y: Tensor, batch_size: int = 4096) -> Metrics:
    """Mean cross-entropy and error of ``params`` on ``(x, y)``, in chunks of ``batch_size``."""
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        logits = forward(params, x[start : start + batch_size])
        target = y[start : start + batch_size]
        total_loss += F.cross_entropy(logits, target, reduction="sum").double()
        wrong += (logits.argmax(dim=1) != target).sum()
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
    k = stacked_size(stacked)
    chunk = max(1, batch_size // k)
    total_loss = torch.zeros(k, dtype=torch.float64, device=x.device)
    wrong = torch.zeros(k, dtype=torch.int64, device=x.device)
    for start in range(0, len(x), chunk):
        logits = forward(stacked, x[start : start + chunk])  # (K, n, classes)
        target = y[start : start + chunk].expand(k, -1)  # (K, n)
        losses = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # (K, n)
        total_loss += losses.sum(1).double()
        wrong += (logits.argmax(dim=2) != target).sum(1)
    n = max(len(x), 1)
    return total_loss / n, wrong.double() / n


def max_logit_difference(forward: Forward, a: StateDict, b: StateDict, x: Tensor) -> float:
    """max |f_a(x) - f_b(x)| over a batch: zero (up to rounding) when a and b are the same function."""
    with torch.no_grad():
        return float((forward(a, x) - forward(b, x)).abs().max())
