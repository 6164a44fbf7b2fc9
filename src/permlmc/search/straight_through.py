"""The straight-through estimator (Ainsworth et al. 2023, "Git Re-Basin", §3.3), generic over a PermutationSpec.

Learn B's permutation by gradient descent on the loss of the midpoint network. Soft weights ``W`` (initialised to
A's floating parameters) are the variables; a step projects them to a hard permutation ``P = argmax_P <W, P(B)>``
(weight matching of B onto ``W``, warm-started from the previous step's), forms the midpoint
``(theta_A + P(theta_B)) / 2`` with ``P(theta_B)`` written as ``W + stopgrad(P(theta_B) - W)``, so that the forward
pass sees the hard permutation and the gradient of the midpoint's cross-entropy on a minibatch passes straight
through to ``W``, and takes one Adam step on ``W``. Buffers (BatchNorm statistics) are not learnt: the midpoint takes
the mean of A's and ``P(B)``'s. Every ``steps // CHECKS`` steps (and at the end) the current permutation's midpoint
loss on the whole search subset is measured; the best one found is returned. The projection is weight matching, which
solves the members of an attention heads group together, so every permutation the search forms keeps whole heads.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from permlmc.evaluation import evaluate
from permlmc.permutation import RUNNING_STATISTICS, PermutationSpec, apply_permutation, identity
from permlmc.search.base import Progress, SearchData
from permlmc.search.weight_matching import match
from permlmc.types import Permutation, StateDict

BUFFERS = (*RUNNING_STATISTICS, "num_batches_tracked")
"""Suffixes of the state-dict entries that are BatchNorm statistics, not learnt weights."""
CHECKS = 10
"""How many times along the run the current permutation's midpoint loss is measured on the whole subset."""


def _midpoint(a: StateDict, b: StateDict) -> StateDict:
    """``(a + b) / 2`` for floating entries (keeping ``b``'s autograd graph), integer entries from ``a``."""
    return {key: (value + b[key]) / 2 if value.is_floating_point() else value for key, value in a.items()}


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    steps: int = 500,
    lr: float = 1e-3,
    batch_size: int = 256,
    max_iter: int = 100,
    **options: Any,
) -> Permutation:
    """B's permutation by the straight-through estimator (module doc): ``steps`` Adam steps of learning rate ``lr``
    on minibatches of ``batch_size`` examples of ``data`` (drawn with ``generator``); each projection is weight
    matching of at most ``max_iter`` sweeps."""
    if options:
        raise TypeError(f"ste got unknown options {sorted(options)}")
    if data is None:
        raise ValueError("ste needs data: the midpoint loss is computed on training examples")
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"ste needs steps >= 1, batch_size >= 1 and lr > 0, got {steps}, {batch_size}, {lr}")
    a = {k: v.detach() for k, v in params_a.items()}
    b = {k: v.detach() for k, v in params_b.items()}
    learnt = [k for k, p in a.items() if p.is_floating_point() and not k.endswith(BUFFERS)]
    soft = {k: a[k].clone().requires_grad_(True) for k in learnt}
    optimiser = torch.optim.Adam(list(soft.values()), lr=lr)
    perm = identity(spec, b)
    best, best_loss = perm, _midpoint_loss(spec, a, b, perm, data)
    every = max(1, steps // CHECKS)
    for step in range(1, steps + 1):
        perm = match(spec, {**a, **{k: v.detach() for k, v in soft.items()}}, b, perm, generator=generator,
                     max_iter=max_iter)
        hard = apply_permutation(spec, {n: p.to(next(iter(b.values())).device) for n, p in perm.items()}, b)
        through = {k: soft[k] + (hard[k] - soft[k]).detach() if k in soft else hard[k] for k in hard}
        rows = torch.randint(0, len(data.x), (min(batch_size, len(data.x)),), generator=generator)
        rows = rows.to(data.x.device)
        loss = F.cross_entropy(data.forward(_midpoint(a, through), data.x[rows]), data.y[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % every == 0 or step == steps:
            full = _midpoint_loss(spec, a, b, perm, data)
            if full < best_loss:
                best, best_loss = perm, full
            if progress is not None:
                progress({"step": step, "loss": float(loss.detach()), "midpoint_loss": full, "best": best_loss})
    return best


@torch.no_grad()
def _midpoint_loss(spec: PermutationSpec, a: StateDict, b: StateDict, perm: Permutation, data: SearchData) -> float:
    device = next(iter(b.values())).device
    permuted = apply_permutation(spec, {n: p.to(device) for n, p in perm.items()}, b)
    return evaluate(data.forward, _midpoint(a, permuted), data.x, data.y).loss
