"""Evaluate a network given as (module skeleton, state dict): no module is rebuilt per evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from lmc.types import StateDict

Forward = Callable[[StateDict, Tensor], Tensor]
"""``forward(params, x) -> logits`` of shape (N, classes)."""


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


def max_logit_difference(forward: Forward, a: StateDict, b: StateDict, x: Tensor) -> float:
    """max |f_a(x) - f_b(x)| over a batch: zero (up to rounding) when a and b are the same function."""
    with torch.no_grad():
        return float((forward(a, x) - forward(b, x)).abs().max())
