"""Exhaustive search: the exact minimiser of the simulated-annealing energy, a ground truth for tiny networks.

The energy is the one simulated annealing minimises (:mod:`permlmc.search.annealing.energy`, Entezari et al. 2022, App.
A.4):

    E(pi) = L((theta_A + P(theta_B, pi)) / 2) - (L(theta_A) + L(theta_B)) / 2

on the training subset ``data.x, data.y``, with ``L`` the error or the cross-entropy (option ``metric``). Every
combination of one permutation per name is evaluated: ``prod_P n_P!`` candidates, enumerated as
``itertools.product`` over the names (spec order) of ``itertools.permutations(range(n_P))``, so the identity comes
first. The members of an attention heads group (:class:`~permlmc.axes.Heads`, ``h`` heads of ``b`` units,
``m`` members) take only the values that keep whole heads, enumerated together where the first of them stands: each
head order (``itertools.permutations``), then each member's orders within every head, ``h! (b!)^(h m)`` in all.
Candidates are evaluated ``batch_size`` at a time: their midpoint parameters are stacked along a leading
axis and ``data.forward`` is vectorised over it with ``torch.func.vmap``. The result is the candidate of lowest
energy, the first in enumeration order among equals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.func import vmap

from permlmc.axes import Heads, whole
from permlmc.evaluation import METRICS, measure
from permlmc.permutation import PermutationSpec
from permlmc.search.annealing.energy import MidpointEnergy
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict

MAX_CANDIDATES = math.factorial(8)
"""Default bound on the number of candidates (one hidden layer of 8 units)."""


Values = tuple[tuple[int, ...], ...]
"""One value per permutation name (or per member of a heads group), each a tuple of ``n`` unit indices."""


def candidates(spec: PermutationSpec, sizes: dict[str, int]) -> Iterator[Values]:
    """Every combination of permutations, one per name of ``sizes``, in enumeration order (module doc)."""
    names: list[tuple[str, ...]] = []
    choices: list[Iterable[Values]] = []
    for name, n in sizes.items():
        group = spec.group_of(name)
        if group is None:
            names.append((name,))
            choices.append((p,) for p in itertools.permutations(range(n)))
        elif not any(name in members for members in names):
            names.append(group.members)
            choices.append(head_values(group, n))
    for chosen in itertools.product(*choices):
        value = {name: p for members, ps in zip(names, chosen, strict=True)
                 for name, p in zip(members, ps, strict=True)}
        yield tuple(value[name] for name in sizes)


def head_values(group: Heads, units: int) -> Iterator[Values]:
    """Every value of the members of ``group`` that keeps whole heads, all members alike (module doc)."""
    heads, block = units // group.head_size, group.head_size
    orders_within = list(itertools.product(itertools.permutations(range(block)), repeat=heads))  # one member's
    for order in itertools.permutations(range(heads)):
        for each in itertools.product(orders_within, repeat=len(group.members)):
            yield tuple(tuple(order[h] * block + within[h][i] for h in range(heads) for i in range(block))
                        for within in each)


def count(spec: PermutationSpec, sizes: dict[str, int]) -> int:
    """How many candidates :func:`candidates` enumerates."""
    total = math.prod(math.factorial(n) for name, n in sizes.items() if spec.group_of(name) is None)
    for group in spec.heads:
        units = sizes[group.members[0]]
        heads = units // group.head_size
        total *= math.factorial(heads) * math.factorial(group.head_size) ** (heads * len(group.members))
    return total


def midpoints_stacked(
    spec: PermutationSpec, half_a: StateDict, half_b: StateDict, perms: dict[str, Tensor]
) -> StateDict:
    """Midpoints ``half_a + P_k(half_b)`` for ``K`` candidates at once: ``perms[name]`` is (K, n), every entry of
    the result has a leading axis of size K."""
    k = len(next(iter(perms.values())))
    out: StateDict = {}
    for key, value in half_b.items():
        stacked = value.expand(k, *value.shape)  # (K, *shape), no copy
        for axis, entry in enumerate(spec.axes.get(key, ())):
            if (name := whole(entry)) is not None:
                shape = [1] * stacked.ndim
                shape[0], shape[axis + 1] = k, value.shape[axis]
                index = perms[name].to(value.device).reshape(shape).expand(stacked.shape)
                stacked = torch.gather(stacked, axis + 1, index)
        out[key] = stacked + half_a[key] if value.is_floating_point() else stacked
    return out


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    metric: str = "error",
    max_candidates: int = MAX_CANDIDATES,
    batch_size: int = 256,
    **options: Any,
) -> Permutation:
    """The permutation of lowest midpoint energy among all candidates (module doc). Refuses (``ValueError``) when
    there are more than ``max_candidates``. ``generator`` is unused: the search is exhaustive."""
    if options:
        raise TypeError(f"brute_force got unknown options {sorted(options)}")
    if data is None:
        raise ValueError("brute_force needs SearchData (network function and a training subset) for its energy")
    if metric not in METRICS:
        raise ValueError(f"brute_force metric must be one of {METRICS}, got {metric!r}")
    spec.require_whole_axes("brute_force")
    sizes = spec.sizes(params_b)
    total = count(spec, sizes)
    if total > max_candidates:
        kept = f", heads groups {[g.members for g in spec.heads]} keeping whole heads" if spec.heads else ""
        raise ValueError(f"brute_force would evaluate {total} candidates (product of n! over permutation sizes "
                         f"{sizes}{kept}), more than max_candidates={max_candidates}")
    energy = MidpointEnergy(spec, params_a, params_b, data, metric)
    evaluate = vmap(lambda params: data.forward(params, data.x))
    best_value, best_index, done = math.inf, 0, 0
    enumeration = candidates(spec, sizes)
    with torch.no_grad():
        while batch := list(itertools.islice(enumeration, batch_size)):
            perms = {name: torch.tensor([c[i] for c in batch], dtype=torch.int64) for i, name in enumerate(sizes)}
            logits = evaluate(midpoints_stacked(spec, energy.half_a, energy.half_b, perms))  # (K, N, classes)
            values = measure(logits, data.y.to(logits.device), metric)
            index = int(values.argmin())  # the first minimum: ties go to the earlier candidate
            if float(values[index]) < best_value:
                best_value, best_index = float(values[index]), done + index
            done += len(batch)
            if progress is not None:
                progress({"event": "batch", "evaluated": done, "candidates": total,
                          "best_energy": best_value - energy.endpoint_mean})
    best = next(itertools.islice(candidates(spec, sizes), best_index, None))
    if progress is not None:
        progress({"event": "done", "best_energy": best_value - energy.endpoint_mean, "best_index": best_index,
                  "candidates": total})
    return {name: torch.tensor(best[i], dtype=torch.int64) for i, name in enumerate(sizes)}
