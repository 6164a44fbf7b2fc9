"""The simulated-annealing energy (Entezari et al. 2022, App. A.4): the barrier at alpha = 1/2,

    E(pi) = L((theta_A + P(theta_B, pi)) / 2) - (L(theta_A) + L(theta_B)) / 2,

with L the error (the paper's code) or the cross-entropy on a fixed training subset. The endpoint term does not
depend on pi (a permutation leaves B's function unchanged), so one energy costs one forward pass of the midpoint
network. :class:`MidpointEnergy` computes exactly that for any architecture; :mod:`lmc.search.incremental`
updates it after a move instead, for chains of dense layers.

The annealer's state is one permutation (int64 array) per name; a move swaps two random units in each.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lmc.evaluation import evaluate
from lmc.permutation import PermutationSpec, apply_permutation
from lmc.search.base import SearchData
from lmc.types import StateDict

State = dict[str, np.ndarray]
"""Permutation name -> int64 array of shape (n,) (the :data:`lmc.types.Permutation` convention)."""
Swaps = dict[str, tuple[int, int]]
"""Permutation name -> the two positions a move exchanged (names of width 1 are absent)."""
METRICS = ("error", "loss")


def swap_move(state: State, rng: np.random.Generator) -> Swaps:
    """Swap two distinct random units in every permutation of width >= 2 (in place); return the swapped pairs."""
    swaps: Swaps = {}
    for name, p in state.items():
        if len(p) >= 2:
            i, j = rng.choice(len(p), size=2, replace=False)
            p[i], p[j] = p[j], p[i]
            swaps[name] = (int(i), int(j))
    return swaps


def measure(logits: Tensor, y: Tensor, metric: str) -> float:
    """Mean error or cross-entropy of ``logits`` (N, classes)."""
    if metric == "error":
        return float((logits.argmax(dim=1) != y).double().mean())
    return float(F.cross_entropy(logits, y))


def measure_classes_first(logits: Tensor, y: Tensor, metric: str) -> float:
    """:func:`measure` for logits stored as (classes, N), where every reduction runs over contiguous rows.

    The error is ``argmax != y`` with argmax's rule for exact ties (the first maximal class), found from the row
    maximum: a reduction over dim 0 that ``argmax`` itself performs several times slower.
    """
    n = max(len(y), 1)
    top = logits.amax(dim=0)  # (N,)
    picked = logits.gather(0, y[None]).squeeze(0)  # (N,)
    if metric == "loss":
        spread = torch.sub(logits, top).exp_().sum(dim=0).log_()  # (N,): logsumexp - top
        return float((spread + top - picked).sum()) / n
    wrong = int((picked < top).sum())
    at_top = logits == top  # (classes, N)
    if int(at_top.sum()) > len(y):  # some example's maximum is attained by several classes
        tied = (at_top.sum(dim=0) > 1).nonzero().squeeze(1)
        wrong += int((logits[:, tied].argmax(dim=0) != y[tied]).sum()) - int((picked[tied] < top[tied]).sum())
    return wrong / n


class MidpointEnergy:
    """``E(pi)`` above, computed from scratch on permuted tensors with the model skeleton built once.

    ``trial`` is the energy of a state one move away from the last one passed to ``__call__``; here it is a
    plain recomputation, subclasses may update instead.
    """

    def __init__(self, spec: PermutationSpec, a: StateDict, b: StateDict, data: SearchData, metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"SA metric must be 'error' or 'loss', got {metric!r}")
        self.spec, self.data, self.metric = spec, data, metric
        self.half_a = {k: v * 0.5 if v.is_floating_point() else v for k, v in a.items()}
        self.half_b = {k: v * 0.5 if v.is_floating_point() else v for k, v in b.items()}
        ends = [evaluate(data.forward, p, data.x, data.y) for p in (a, b)]
        self.endpoint_mean = sum(getattr(m, metric) for m in ends) / 2

    def midpoint(self, state: State) -> StateDict:
        """Parameters ``(theta_A + P(theta_B, pi)) / 2``."""
        perm = {name: torch.from_numpy(p) for name, p in state.items()}
        half_b = apply_permutation(self.spec, perm, self.half_b)
        return {k: v + half_b[k] if v.is_floating_point() else v for k, v in self.half_a.items()}

    @torch.no_grad()
    def __call__(self, state: State) -> float:
        logits = self.data.forward(self.midpoint(state), self.data.x)  # (N, classes)
        return measure(logits, self.data.y, self.metric) - self.endpoint_mean

    def trial(self, moved: State, swaps: Swaps) -> float:
        return self(moved)
