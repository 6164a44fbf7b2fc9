"""Simulated annealing over permutations (Entezari et al. 2022, Alg. 1 and App. A.4), built on ``simanneal``.

State: one permutation per name in the spec. Move: swap two random units in every permutation; the members of an
attention heads group swap two whole heads in all, or two units within a head in each, so that every state keeps whole
heads. Energy: the barrier at alpha = 1/2 between A and the permuted B on a fixed training subset (both:
:mod:`permlmc.search.annealing.energy`).

Energy paths (option ``energy``): ``full`` recomputes the midpoint network's forward pass after every move, for any
architecture (the reference); ``incremental`` updates cached activations of the current state
(:mod:`permlmc.search.annealing.incremental`), for specs that form a chain of dense layers (MLPs), and is checked once
against the network's forward pass; ``auto`` (default) picks ``incremental`` when it applies and ``full`` otherwise.
Both paths draw the same moves and acceptance tests from the same seeds, so with the error they take the same path;
with the loss their energies differ by float32 rounding (~1e-7), which can rarely flip an acceptance test.

Loop (option ``candidates``): 1 runs simanneal's own loop, one move per step; more evaluates rounds of up to that
many moves in one vectorised pass and keeps simanneal's chain (:mod:`permlmc.search.annealing.rounds`). ``auto``
(default) is :data:`GPU_CANDIDATES` for the incremental energy on a GPU and 1 otherwise.

Schedules (temperature decays exponentially from ``tmax`` to ``tmin`` over ``steps``, as in simanneal): ``paper``,
``calibrated`` (default; the smallest uphill move is one example's error, 1/n) or ``custom``, as described in
:mod:`permlmc.search.annealing.schedule`, which every annealing of the library shares.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from permlmc.permutation import PermutationSpec, identity
from permlmc.search.annealing import schedule as schedules
from permlmc.search.annealing.energy import MidpointEnergy, State, swap_move
from permlmc.search.annealing.incremental import ChainMidpointEnergy, dense_chain
from permlmc.search.annealing.rounds import anneal_in_rounds
from permlmc.search.annealing.schedule import (
    SCHEDULES,
    MovingAnnealer,
    random_streams,
    report,
    report_step,
    resolve_schedule,
)
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict

__all__ = ["ENERGIES", "SCHEDULES", "IncrementalAnnealer", "MidpointEnergy", "calibrate", "midpoint_energy", "search",
           "swap_move"]

ENERGIES = ("auto", "full", "incremental")
GPU_CANDIDATES = 32
"""Largest round of candidate moves evaluated together on a GPU by default (:mod:`permlmc.search.annealing.rounds`)."""


def midpoint_energy(
    spec: PermutationSpec, a: StateDict, b: StateDict, data: SearchData, metric: str, kind: str = "auto"
) -> MidpointEnergy:
    """The energy for path ``kind`` (module doc): a :class:`ChainMidpointEnergy` or a :class:`MidpointEnergy`."""
    if kind not in ENERGIES:
        raise ValueError(f"sa energy {kind!r} is unknown; choose one of {ENERGIES}")
    if kind == "full":
        return MidpointEnergy(spec, a, b, data, metric)
    layers = dense_chain(spec, a)
    reason = "the permutation spec is not a chain of dense layers"
    if layers is not None:
        try:
            chain = ChainMidpointEnergy(spec, a, b, data, metric, layers)
        except ValueError as err:
            reason = str(err)
        else:
            if chain.agrees_with_forward():
                return chain
            reason = "the network's forward pass is not relu-separated dense layers"
    if kind == "incremental":
        raise ValueError(f"sa energy 'incremental' does not apply: {reason}")
    return MidpointEnergy(spec, a, b, data, metric)


def resolve_candidates(candidates: int | str, device: torch.device, cached: bool = True) -> int:
    """Moves per round: ``auto`` is :data:`GPU_CANDIDATES` for the cached energy on a GPU, where one round costs
    about as much as one move (a graph launch and a host read), and 1 (simanneal's own loop) otherwise: on the
    CPU a round costs its candidates' arithmetic, and the full energy's K stacked forward passes hold K times
    the activations."""
    if candidates == "auto":
        return GPU_CANDIDATES if device.type != "cpu" and cached else 1
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"sa candidates must be 'auto' or a positive integer, got {candidates!r}")
    return candidates


def copy_state(state: State) -> State:
    """What simanneal's ``deepcopy`` strategy gives for a state, without its generic traversal."""
    return {name: p.copy() for name, p in state.items()}


class IncrementalAnnealer(MovingAnnealer):
    """Incremental path: ``move`` proposes to the cache and returns ``dE``; simanneal then skips ``energy``.

    simanneal decides after ``move`` returns and says nothing: on acceptance it keeps the moved state object as
    ``self.state``; on rejection it replaces ``self.state`` by a copy of the previous state. So the next call
    settles the pending proposal by object identity (same object: commit; another: discard), then checks that the
    cache holds ``self.state`` (rebuilding it if not, which never happens under simanneal's loop).
    """

    def __init__(
        self, state: State, energy: ChainMidpointEnergy, rng: np.random.Generator, progress: Progress | None
    ) -> None:
        super().__init__(state, energy, swap_move, copy_state, rng, progress)
        self._chain = energy
        self._moved: State | None = None

    def _settle(self) -> None:
        if self._moved is not None:
            if self.state is self._moved:
                self._chain.commit()
            else:
                self._chain.discard()
            self._moved = None
        if not self._chain.holds(self.state):
            self._chain.reset(self.state)

    def move(self) -> float:
        self._settle()
        before = self._chain.value
        swaps = swap_move(self.state, self._rng)
        self._moved = self.state
        return self._chain.propose(swaps) - before

    def energy(self) -> float:
        self._settle()
        return self._chain.value


def calibrate(energy: MidpointEnergy, state: State, rng: np.random.Generator, moves: int) -> tuple[float, float]:
    """Temperatures from the energy changes of ``moves`` single moves away from ``state``
    (:func:`permlmc.search.annealing.schedule.calibrate`)."""

    def moved() -> float:
        trial = {k: v.copy() for k, v in state.items()}
        return energy.trial(trial, swap_move(trial, rng, energy.spec.heads))

    quantum = 1.0 / len(energy.data.y) if energy.metric == "error" else None
    return schedules.calibrate(energy(state), moved, moves, quantum)


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    schedule: str = "calibrated",
    steps: int | None = None,
    tmax: float | None = None,
    tmin: float | None = None,
    metric: str = "error",
    updates: int = 100,
    calibration_moves: int = 64,
    energy: str = "auto",
    candidates: int | str = "auto",
    **options: Any,
) -> Permutation:
    """Anneal B's permutations towards A (module doc); ``energy`` picks the energy path: auto, full, incremental;
    ``candidates`` > 1 evaluates up to that many moves per round (:mod:`permlmc.search.annealing.rounds`)."""
    if options:
        raise TypeError(f"sa got unknown options {sorted(options)}")
    if data is None:
        raise ValueError("sa needs SearchData (network function and a training subset) to compute its energy")
    if schedule not in SCHEDULES:
        raise ValueError(f"sa schedule {schedule!r} is unknown; choose one of {SCHEDULES}")
    resolve_candidates(candidates, data.x.device)  # a bad value fails before any work
    rng, acceptance_seed = random_streams(generator)
    midpoint = midpoint_energy(spec, params_a, params_b, data, metric, energy)
    state = {name: p.numpy().copy() for name, p in identity(spec, params_b).items()}
    tmax, tmin, steps = resolve_schedule(
        "sa", schedule, steps, tmax, tmin, lambda: calibrate(midpoint, state, rng, calibration_moves))
    incremental = isinstance(midpoint, ChainMidpointEnergy)
    rounds = resolve_candidates(candidates, data.x.device, incremental)
    report(progress, "schedule", schedule=schedule, tmax=tmax, tmin=tmin, steps=steps, metric=metric,
           energy="incremental" if incremental else "full", candidates=rounds)
    if rounds > 1:
        best, best_energy = anneal_in_rounds(
            midpoint, state, rng, tmax=tmax, tmin=tmin, steps=steps, updates=updates, seed=acceptance_seed,
            candidates=rounds, report=lambda *record: report_step(progress, *record))
    else:
        annealer = (IncrementalAnnealer(state, midpoint, rng, progress) if isinstance(midpoint, ChainMidpointEnergy)
                    else MovingAnnealer(state, midpoint, partial(swap_move, heads=spec.heads), copy_state, rng,
                                        progress))
        best, best_energy = annealer.run({"tmax": tmax, "tmin": tmin, "steps": steps, "updates": updates},
                                            acceptance_seed)
    report(progress, "done", best_energy=best_energy, steps=steps)
    return {name: torch.as_tensor(p, dtype=torch.int64) for name, p in best.items()}
