"""Simulated annealing that evaluates several candidate moves at once and keeps simanneal's Markov chain.

simanneal's loop (:meth:`simanneal.Annealer.anneal`) proposes one move per step and pays one energy evaluation and, on a
GPU, one host synchronisation for each. Here a round draws K moves from the current state, evaluates all K in one
vectorised pass (:meth:`permlmc.search.annealing.energy.MidpointEnergy.many`) and then walks through them in order, one
step each, with simanneal's schedule and acceptance rule (:func:`permlmc.search.annealing.schedule.temperature` and
:func:`~permlmc.search.annealing.schedule.rejects`). The first accepted
move becomes the current state and ends the round; the rest of the round was drawn for a state that is no longer
current, so it is dropped without being counted. Each counted step is therefore exactly one step of simanneal's
chain: a move drawn uniformly from the current state and accepted with the same probability. Only the random
draws spent on dropped candidates differ, so with K = 1 the run is simanneal's own, state for state (tested).

A round's size follows the recent acceptance rate (about 1.5 / rate as a power of two, at most ``candidates``
and at most what the energy can hold in memory, :meth:`~permlmc.search.annealing.energy.MidpointEnergy.largest_round`),
so that few evaluated candidates are dropped: rounds are long at low temperature, where most moves are rejected,
and short at the start. Progress reports (``updates``), the best state and its energy are as in simanneal.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import numpy as np

from permlmc.search.annealing.energy import MidpointEnergy, State, apply_swaps, draw_proposals
from permlmc.search.annealing.schedule import rejects, temperature

Report = Callable[[int, float, float, float, float | None, float | None], None]
"""``report(step, temperature, energy, best_energy, acceptance, improvement)``, as simanneal's ``update``."""

RECENT = 256
"""Steps over which the acceptance rate that sizes a round is estimated (older ones count half)."""


class AcceptanceRate:
    """Acceptance rate of the recent steps, with one accepted pseudo-step so it starts at 1."""

    def __init__(self) -> None:
        self.trials, self.accepts = 1.0, 1.0

    def add(self, trials: int, accepts: int) -> None:
        self.trials += trials
        self.accepts += accepts
        if self.trials > RECENT:
            self.trials, self.accepts = self.trials / 2, self.accepts / 2

    def round_size(self, limit: int) -> int:
        """About 1.5 / rate, rounded up to a power of two (few distinct sizes: a GPU captures one graph each),
        at most ``limit``."""
        return min(limit, 1 << max(0, math.ceil(math.log2(1.5 * self.trials / self.accepts))))


def anneal_in_rounds(
    energy: MidpointEnergy, state: State, rng: np.random.Generator, *, tmax: float, tmin: float, steps: int,
    updates: int, seed: int, candidates: int, report: Report,
) -> tuple[State, float]:
    """Anneal ``state`` (changed in place) for ``steps`` steps with rounds of at most ``candidates`` moves; the
    acceptance draws come from ``random.Random(seed)`` (simanneal seeds the global one the same way). Returns
    the best state and its energy."""
    if tmin <= 0:
        raise ValueError(f"sa tmin must be positive for exponential cooling, got {tmin}")
    if candidates < 1:
        raise ValueError(f"sa candidates must be at least 1, got {candidates}")
    draws, rate = random.Random(seed), AcceptanceRate()
    candidates = min(candidates, energy.largest_round())
    current = energy(state)
    best, best_energy = {k: v.copy() for k, v in state.items()}, current
    trials = accepts = improves = 0
    wavelength = steps / updates if updates > 0 else 0.0
    if updates > 0:
        report(0, tmax, current, best_energy, None, None)
    step = 0
    while step < steps:
        proposals = draw_proposals(state, rng, rate.round_size(candidates), energy.spec.heads)
        values = energy.many(state, proposals).tolist()
        used = 0
        for index, value in enumerate(values):
            step, used = step + 1, used + 1
            temp = temperature(step, steps, tmax, tmin)
            change = value - current
            trials += 1
            accepted = not rejects(change, temp, draws.random)
            if accepted:
                accepts, improves = accepts + 1, improves + (change < 0.0)
                apply_swaps(state, proposals[index])
                energy.take(index)
                current = value
                if current < best_energy:
                    best, best_energy = {k: v.copy() for k, v in state.items()}, current
            if updates > 1 and (step // wavelength) > ((step - 1) // wavelength):
                report(step, temp, current, best_energy, accepts / trials, improves / trials)
                trials = accepts = improves = 0
            if accepted or step == steps:  # the moves after this one were drawn for another state, or run over
                break
        rate.add(used, int(accepted))
    return best, best_energy
