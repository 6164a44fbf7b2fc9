"""Simulated annealing over the permutations of n models at once: SA1 and SA2 (Entezari et al. 2022, §4.2, Alg. 1).

State: one permutation per spec name for each of the n models; model 0 is the reference and keeps the identity.
Move: pick one of models 1..n-1 uniformly and swap two random units in each of its permutations (the pairwise
move of :func:`permlmc.search.annealing.energy.swap_move`, which keeps attention heads whole), so ``steps`` moves
give each model about ``steps / (n - 1)``. Energies, with ``theta_i' = P(theta_i, pi_i)`` and ``L`` the error or
cross-entropy on a fixed training subset:

    SA1:  E = mean_{i<j} [ L((theta_i' + theta_j') / 2) - (L(theta_i) + L(theta_j)) / 2 ]
            = mean_{i<j} L((theta_i' + theta_j') / 2) - mean_i L(theta_i)
    SA2:  E = L(mean_i theta_i') - mean_i L(theta_i)

SA1 is the average pairwise midpoint barrier, the energy of the pairwise SA (:mod:`permlmc.search.annealing.energy`)
over all n(n-1)/2 pairs; SA2 is the paper's "train error of the average model", shifted by the constant endpoint mean so
that both equal the pairwise energy when n = 2. Evaluation: both keep the permuted copy of every model and re-permute
only a model whose permutation changed. SA1 keeps every pair's value and recomputes only the pairs of changed models, in
one vectorised forward pass (``torch.func.vmap`` over the stacked midpoints); SA2 re-averages the n copies and runs one
forward pass per energy. Because pairs are stacked differently along the run, an SA1 loss energy can differ from a fresh
evaluation by float32 rounding (~1e-7).

Schedules and acceptance are those of the pairwise SA (:mod:`permlmc.search.annealing.pairwise`, simanneal's Metropolis
rule, best state kept). The ``calibrated`` schedule samples single group moves; its smallest uphill error step is one
example in one pair, ``1 / (N * pairs)`` for SA1 and ``1 / N`` for SA2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from itertools import combinations
from typing import Any

import numpy as np
import torch
from torch.func import vmap

from permlmc.axes import Heads
from permlmc.evaluation import METRICS, evaluate, measure
from permlmc.permutation import PermutationSpec, apply_permutation, identity
from permlmc.search.annealing import schedule as schedules
from permlmc.search.annealing.energy import State, swap_move
from permlmc.search.annealing.schedule import MovingAnnealer, random_streams, report, resolve_schedule
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict

__all__ = ["AverageModelEnergy", "GroupEnergy", "GroupState", "MeanPairwiseEnergy", "calibrate_group",
           "group_move", "sa1", "sa2"]

GroupState = list[State]
"""One :data:`~permlmc.search.annealing.energy.State` per model; entry 0 (the reference) is never moved."""


def copy_group(state: GroupState) -> GroupState:
    return [{name: p.copy() for name, p in s.items()} for s in state]


def group_move(state: GroupState, rng: np.random.Generator, heads: Sequence[Heads] = ()) -> int:
    """Swap two units in every permutation of one random non-reference model (in place; the members of ``heads``
    moved as :func:`~permlmc.search.annealing.energy.swap_move` moves them); return its index."""
    model = int(rng.integers(1, len(state)))
    swap_move(state[model], rng, heads)
    return model


class _PermutedCopies:
    """``scale * P(theta_i, pi_i)`` for every model (floating entries scaled), re-permuted only when pi_i changes."""

    def __init__(self, spec: PermutationSpec, params: Sequence[StateDict], scale: float) -> None:
        self.spec = spec
        self.scaled = [{k: v * scale if v.is_floating_point() else v for k, v in p.items()} for p in params]
        self.models = list(self.scaled)
        self._states: list[State | None] = [None] * len(params)

    def refresh(self, state: GroupState) -> set[int]:
        """Bring ``models`` up to date with ``state``; return the indices whose permutation changed."""
        changed = set()
        for i, (current, cached) in enumerate(zip(state, self._states, strict=True)):
            if cached is None or any(not np.array_equal(p, cached[name]) for name, p in current.items()):
                perm = {name: torch.from_numpy(p.copy()) for name, p in current.items()}
                self.models[i] = apply_permutation(self.spec, perm, self.scaled[i])
                self._states[i] = {name: p.copy() for name, p in current.items()}
                changed.add(i)
        return changed


class GroupEnergy:
    """Common part of the SA1 and SA2 energies (module doc): endpoints, metric and the permuted copies."""

    quantum: float
    """The smallest change of the error energy: one example flipping in one evaluated network."""

    def __init__(
        self, spec: PermutationSpec, params: Sequence[StateDict], data: SearchData, metric: str, scale: float
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"SA metric must be 'error' or 'loss', got {metric!r}")
        if len(params) < 2:
            raise ValueError(f"a group search needs at least 2 models, got {len(params)}")
        self.spec, self.data, self.metric, self.size = spec, data, metric, len(params)
        self.copies = _PermutedCopies(spec, params, scale)
        ends = [getattr(evaluate(data.forward, p, data.x, data.y), metric) for p in params]
        self.endpoint_mean = sum(ends) / len(ends)

    def __call__(self, state: GroupState) -> float:
        raise NotImplementedError


class MeanPairwiseEnergy(GroupEnergy):
    """SA1: the midpoint barrier averaged over all pairs of permuted models."""

    def __init__(self, spec: PermutationSpec, params: Sequence[StateDict], data: SearchData, metric: str) -> None:
        super().__init__(spec, params, data, metric, scale=0.5)
        self.pairs = list(combinations(range(self.size), 2))
        self.quantum = 1.0 / (max(len(data.y), 1) * len(self.pairs))
        self._values: list[float | None] = [None] * len(self.pairs)
        self._batched = vmap(data.forward, in_dims=(0, None))

    @torch.no_grad()
    def __call__(self, state: GroupState) -> float:
        changed = self.copies.refresh(state)
        stale = [k for k, (i, j) in enumerate(self.pairs)
                 if self._values[k] is None or i in changed or j in changed]
        if stale:
            halves = self.copies.models
            first = halves[self.pairs[stale[0]][0]]
            # floating entries: theta_i'/2 + theta_j'/2 (as MidpointEnergy); integer buffers from model i
            stacked = {
                key: torch.stack([halves[self.pairs[k][0]][key] + halves[self.pairs[k][1]][key]
                                  if value.is_floating_point() else halves[self.pairs[k][0]][key] for k in stale])
                for key, value in first.items()
            }  # each (stale pairs, *shape)
            logits = self._batched(stacked, self.data.x)  # (stale pairs, N, classes)
            for k, pair_logits in zip(stale, logits, strict=True):
                self._values[k] = float(measure(pair_logits, self.data.y, self.metric))
        values = [v for v in self._values if v is not None]
        return sum(values) / len(values) - self.endpoint_mean


class AverageModelEnergy(GroupEnergy):
    """SA2: the error (or loss) of the weight-space mean of the permuted models."""

    def __init__(self, spec: PermutationSpec, params: Sequence[StateDict], data: SearchData, metric: str) -> None:
        super().__init__(spec, params, data, metric, scale=1.0 / len(params))
        self.quantum = 1.0 / max(len(data.y), 1)

    def average(self, state: GroupState) -> StateDict:
        """Parameters ``mean_i P(theta_i, pi_i)`` (integer buffers from model 0)."""
        self.copies.refresh(state)
        first, *rest = self.copies.models
        return {key: sum((m[key] for m in rest), value) if value.is_floating_point() else value
                for key, value in first.items()}

    @torch.no_grad()
    def __call__(self, state: GroupState) -> float:
        logits = self.data.forward(self.average(state), self.data.x)  # (N, classes)
        return float(measure(logits, self.data.y, self.metric)) - self.endpoint_mean


def calibrate_group(
    energy: GroupEnergy, state: GroupState, rng: np.random.Generator, moves: int
) -> tuple[float, float]:
    """Temperatures by the shared rule (:func:`permlmc.search.annealing.schedule.calibrate`) from ``moves`` single
    group moves; the smallest uphill error move is :attr:`GroupEnergy.quantum`."""

    def moved() -> float:
        trial = copy_group(state)
        group_move(trial, rng, energy.spec.heads)
        return energy(trial)

    return schedules.calibrate(energy(state), moved, moves, energy.quantum if energy.metric == "error" else None)


def _anneal(
    name: str,
    make_energy: Callable[[PermutationSpec, Sequence[StateDict], SearchData, str], GroupEnergy],
    spec: PermutationSpec,
    params: Sequence[StateDict],
    data: SearchData | None,
    generator: torch.Generator,
    progress: Progress | None,
    /,
    schedule: str = "calibrated",
    steps: int | None = None,
    tmax: float | None = None,
    tmin: float | None = None,
    metric: str = "error",
    updates: int = 100,
    calibration_moves: int = 64,
    energy: str = "auto",
    **options: Any,
) -> list[Permutation]:
    """The group search of ``name``; options as the pairwise SA (``energy`` accepts only auto/full here)."""
    if options:
        raise TypeError(f"{name} got unknown options {sorted(options)}")
    if data is None:
        raise ValueError(f"{name} needs SearchData (network function and a training subset) to compute its energy")
    if energy not in ("auto", "full"):
        raise ValueError(f"{name} energy {energy!r} is unknown; group searches have only 'auto' and 'full'")
    rng, acceptance_seed = random_streams(generator)
    objective = make_energy(spec, params, data, metric)
    state = [{n: p.numpy().copy() for n, p in identity(spec, model).items()} for model in params]
    tmax, tmin, steps = resolve_schedule(
        name, schedule, steps, tmax, tmin, lambda: calibrate_group(objective, state, rng, calibration_moves))
    report(progress, "schedule", search=name, models=len(params), schedule=schedule, tmax=tmax, tmin=tmin,
           steps=steps, metric=metric)
    annealer = MovingAnnealer(state, objective, partial(group_move, heads=spec.heads), copy_group, rng, progress)
    best, best_energy = annealer.run({"tmax": tmax, "tmin": tmin, "steps": steps, "updates": updates},
                                     acceptance_seed)
    report(progress, "done", best_energy=best_energy, steps=steps)
    return [{n: torch.as_tensor(p, dtype=torch.int64) for n, p in model.items()} for model in best]


def sa1(
    spec: PermutationSpec,
    params: Sequence[StateDict],
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    **options: Any,
) -> list[Permutation]:
    """SA1: minimise the average pairwise midpoint barrier of the n permuted models (module doc)."""
    return _anneal("sa1", MeanPairwiseEnergy, spec, params, data, generator, progress, **options)


def sa2(
    spec: PermutationSpec,
    params: Sequence[StateDict],
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    **options: Any,
) -> list[Permutation]:
    """SA2: minimise the error (or loss) of the weight average of the n permuted models (module doc)."""
    return _anneal("sa2", AverageModelEnergy, spec, params, data, generator, progress, **options)
