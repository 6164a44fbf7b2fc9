"""Weight matching (Ainsworth et al. 2023, "Git Re-Basin", Alg. 1), generic over a PermutationSpec.

For each permutation ``P`` in turn (random order), with all other permutations fixed, maximise
``sum_{(key, axis) in P} <W_A[key], P W_B[key]>`` — a linear assignment problem on the ``(n, n)`` matrix
``S[i, k] = sum <row i of W_A along axis, row k of W_B along axis>``, rows taken with every *other*
permutation already applied to B. Repeat until no permutation improves.

``S`` for ``P`` depends only on the permutations acting on the other axes of ``P``'s entries (its neighbours). When
none of them has changed since ``P`` was last solved, ``S`` is the one solved then and its assignment already holds,
so the solve is skipped: the result is the one of solving every permutation in every sweep, bit for bit.

The members of a heads group (attention, :class:`~permlmc.axes.Heads`) are solved together, whichever of
them is drawn: one head order for all and each member's order within every head
(:func:`~permlmc.search.assignment.best_head_assignment`).

Option ``restarts``: coordinate ascent stops at the first permutation no single solve improves, which depends on
the order the names are drawn in; with ``restarts = k`` the ascent runs k times from the identity (each sweep order
drawn from the same ``generator``, the first as with one) and the result of the largest total similarity
``sum_key <W_A[key], P(W_B)[key]>`` is kept (the first of equals). Transformers need it: their residual stream is
tied to every block, and an ascent that settles every block before the stream can stop short of a planted
permutation.

Option ``statistics``: whether BatchNorm running statistics (``running_mean``, ``running_var``) enter ``S`` beside
the weights (default, they are state-dict entries the permutation moves) or only learned parameters do, as in Git
Re-Basin's weight matching (its permutation specs list parameters alone).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from permlmc.axes import axis_names
from permlmc.permutation import RUNNING_STATISTICS, PermutationSpec, identity, permute_tensor, unit_rows
from permlmc.search.assignment import best_values
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict


def _similarity(
    spec: PermutationSpec, perm: Permutation, a: StateDict, b: StateDict, name: str, statistics: bool
) -> np.ndarray:
    n = len(perm[name])
    total = torch.zeros((n, n), dtype=torch.float64)
    for stretch in spec.stretches[name]:
        if not statistics and stretch.key.rsplit(".", 1)[-1] in RUNNING_STATISTICS:
            continue
        wa = unit_rows(a[stretch.key], stretch, n).double()  # (n, rest)
        wb = unit_rows(permute_tensor(b[stretch.key], spec.axes[stretch.key], perm, skip=stretch.axis), stretch, n)
        total += wa @ wb.double().T  # (n, n)
    return total.numpy()


def neighbours(spec: PermutationSpec, name: str) -> tuple[str, ...]:
    """The permutations whose values enter the similarity matrix of ``name``: those on the other axes of its
    entries (``name`` itself where it acts on two axes of one entry)."""
    found: dict[str, None] = {}
    for stretch in spec.stretches[name]:
        for axis, entry in enumerate(spec.axes[stretch.key]):
            if axis != stretch.axis:
                found.update(dict.fromkeys(axis_names(entry)))
    return tuple(found)


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    max_iter: int = 100,
    statistics: bool = True,
    restarts: int = 1,
    **options: Any,
) -> Permutation:
    if options:
        raise TypeError(f"weight_matching got unknown options {sorted(options)}")
    if restarts < 1:
        raise ValueError(f"weight_matching's restarts must be at least 1, got {restarts}")
    a = {k: v.detach().cpu() for k, v in params_a.items()}
    b = {k: v.detach().cpu() for k, v in params_b.items()}
    best, best_total = None, -np.inf
    for attempt in range(restarts):
        found = match(spec, a, b, identity(spec, b), generator=generator, max_iter=max_iter, progress=progress,
                      statistics=bool(statistics))
        if restarts == 1:
            return found
        total = total_similarity(spec, found, a, b, statistics)
        if progress is not None:
            progress({"restart": attempt + 1, "similarity": total})
        if total > best_total:
            best, best_total = found, total
    assert best is not None
    return best


def total_similarity(spec: PermutationSpec, perm: Permutation, a: StateDict, b: StateDict, statistics: bool) -> float:
    """``sum_key <W_A[key], P(W_B)[key]>`` over the entries a permutation acts on (running statistics only with
    ``statistics``): the objective every solve increases."""
    total = 0.0
    for key, axes in spec.axes.items():
        if not any(axis_names(entry) for entry in axes):
            continue
        if not statistics and key.rsplit(".", 1)[-1] in RUNNING_STATISTICS:
            continue
        total += float((a[key].double() * permute_tensor(b[key], axes, perm).double()).sum())
    return total


def match(
    spec: PermutationSpec, params_a: StateDict, params_b: StateDict, start: Permutation, *,
    generator: torch.Generator, max_iter: int = 100, progress: Progress | None = None, statistics: bool = True,
) -> Permutation:
    """Coordinate ascent of the module doc from the permutation ``start`` (left as it is): sweeps over the names in
    random order until one sweep improves none, at most ``max_iter`` sweeps."""
    a = {k: v.detach().cpu() for k, v in params_a.items()}
    b = {k: v.detach().cpu() for k, v in params_b.items()}
    perm = {name: p.clone() for name, p in start.items()}
    names = spec.names
    together = {name: spec.moved_with(name) for name in names}
    around = {name: tuple(dict.fromkeys(o for member in together[name] for o in neighbours(spec, member)))
              for name in names}
    changes = dict.fromkeys(names, 0)  # how often each permutation has changed
    solved: dict[tuple[str, ...], tuple[int, ...]] = {}  # the neighbours' change counts at each one's last solve
    for iteration in range(max_iter):
        improved = False
        for index in torch.randperm(len(names), generator=generator).tolist():
            members = together[names[index]]
            seen = tuple(changes[other] for other in around[names[index]])
            if solved.get(members) == seen:
                continue  # the matrices solved last time: their assignment holds (module doc)
            solved[members] = seen
            sims = [_similarity(spec, perm, a, b, name, statistics) for name in members]
            rows = np.arange(len(sims[0]))
            found = best_values(spec, members, sims)
            old = sum(sim[rows, perm[name].numpy()].sum() for sim, name in zip(sims, members, strict=True))
            new = sum(sim[rows, cols].sum() for sim, cols in zip(sims, found, strict=True))
            if new > old + 1e-12 * max(1.0, abs(old)):
                for name, cols in zip(members, found, strict=True):
                    perm[name] = torch.as_tensor(cols, dtype=torch.int64)
                    changes[name] += 1
                improved = True
        if progress is not None:
            progress({"iteration": iteration + 1, "improved": improved})
        if not improved:
            break
    return perm
