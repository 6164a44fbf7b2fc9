"""What every simulated annealing of the library shares with simanneal's :class:`~simanneal.Annealer`: the
exponential cooling, the Metropolis acceptance, the temperature schedules and their calibration, how a run's
random streams are drawn from the search's generator, its progress records, and :class:`ReportingAnnealer`, the
simanneal annealer every search subclasses.

simanneal runs the pairwise search with one candidate (:mod:`permlmc.search.annealing.pairwise`) and the group
searches (:mod:`permlmc.search.annealing.group`); the round loop (:mod:`permlmc.search.annealing.rounds`) walks the same
chain with :func:`temperature` and :func:`rejects`, written as simanneal computes them, so that a round of one
candidate is simanneal's run state for state (tested).

Schedules: ``paper`` uses the paper's Tmax = 25000, Tmin = 2.5; on an energy in [0, 1] this accepts nearly every
move, so the search is close to a random walk that keeps its best state. ``calibrated`` (default) sets ``tmax`` so
that an average uphill move from the start is accepted with probability 0.8 and ``tmin`` so that the smallest
possible uphill move (for the error, one example in one evaluated network) is accepted with probability 0.01.
``custom`` takes both.
"""

from __future__ import annotations

import math
import random
import signal
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from simanneal import Annealer

from permlmc.search.base import Progress

PAPER_SCHEDULE = {"tmax": 25000.0, "tmin": 2.5, "steps": 50000}
SCHEDULES = ("calibrated", "paper", "custom")


def temperature(step: int, steps: int, tmax: float, tmin: float) -> float:
    """simanneal's exponential cooling: ``T = tmax * exp(-ln(tmax / tmin) * step / steps)``."""
    return tmax * math.exp(-math.log(tmax / tmin) * step / steps)


def rejects(change: float, temperature: float, draw: Callable[[], float]) -> bool:
    """simanneal's Metropolis rule: an uphill move (``change > 0``) is rejected when ``exp(-change / T)`` is below
    a uniform draw; ``draw`` is called for uphill moves only, as simanneal does."""
    return change > 0.0 and math.exp(-change / temperature) < draw()


def random_streams(generator: torch.Generator) -> tuple[np.random.Generator, int]:
    """The run's move generator and the seed of its acceptance draws, both from the search's ``generator``."""
    seeds = torch.randint(0, 2**62, (2,), generator=generator).tolist()
    return np.random.default_rng(seeds[0]), int(seeds[1])


def temperatures(deltas: Sequence[float], quantum: float | None) -> tuple[float, float]:
    """(Tmax, Tmin) from sampled energy changes: an average uphill move is accepted at Tmax with probability 0.8,
    the smallest possible one (``quantum``; for a loss, the smallest uphill change seen) at Tmin with 0.01."""
    uphill = np.asarray([d for d in deltas if d > 1e-12])
    quantum = float(uphill.min(initial=1e-4)) if quantum is None else quantum
    tmax = float(uphill.mean()) / math.log(1 / 0.8) if len(uphill) else 10 * quantum
    tmin = quantum / math.log(100)
    return max(tmax, 10 * tmin), tmin


def calibrate(
    start: float, moved_energy: Callable[[], float], moves: int, quantum: float | None
) -> tuple[float, float]:
    """:func:`temperatures` from ``moves`` single moves away from a state of energy ``start``; each call of
    ``moved_energy`` makes one such move on a copy of the state and returns its energy."""
    return temperatures([moved_energy() - start for _ in range(moves)], quantum)


def resolve_schedule(
    name: str, schedule: str, steps: int | None, tmax: float | None, tmin: float | None,
    calibrated: Callable[[], tuple[float, float]],
) -> tuple[float, float, int]:
    """(Tmax, Tmin, steps) of schedule ``paper``, ``calibrated`` (from ``calibrated()``) or ``custom``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"{name} schedule {schedule!r} is unknown; choose one of {SCHEDULES}")
    if schedule == "paper":
        tmax, tmin = PAPER_SCHEDULE["tmax"], PAPER_SCHEDULE["tmin"]
        steps = int(PAPER_SCHEDULE["steps"]) if steps is None else steps
    elif schedule == "calibrated":
        tmax, tmin = calibrated()
    elif tmax is None or tmin is None:
        raise ValueError(f"{name} schedule 'custom' needs both tmax and tmin")
    return float(tmax), float(tmin), 1000 if steps is None else int(steps)


def report(progress: Progress | None, event: str, **fields: Any) -> None:
    """One progress record ``{"event": event, **fields}`` (schedule, step, done)."""
    if progress is not None:
        progress({"event": event, **fields})


def report_step(
    progress: Progress | None, step: int, temperature: float, energy: float, best_energy: float,
    acceptance: float | None, improvement: float | None,
) -> None:
    """One ``step`` progress record (simanneal's ``update``)."""
    report(progress, "step", step=step, temperature=temperature, energy=energy, best_energy=best_energy,
           acceptance=acceptance, improvement=improvement)


class ReportingAnnealer(Annealer):
    """simanneal's annealer that reports each update through ``progress`` and leaves Ctrl-C alone."""

    def __init__(self, state: Any, rng: np.random.Generator, progress: Progress | None) -> None:
        previous = signal.getsignal(signal.SIGINT)
        super().__init__(initial_state=state)
        # simanneal turns Ctrl-C into "stop early and return the best state"; an interrupted job must fail
        # instead of writing a result that looks finished.
        signal.signal(signal.SIGINT, previous)
        self._rng, self._progress = rng, progress

    def update(self, step: int, T: float, E: float, acceptance: float | None, improvement: float | None) -> None:
        report_step(self._progress, step, T, E, getattr(self, "best_energy", E), acceptance, improvement)

    def run(self, schedule: dict[str, float], seed: int) -> tuple[Any, float]:
        """Anneal under ``schedule`` with simanneal's acceptance draws seeded by ``seed`` (they come from the
        global ``random`` module, whose state is restored afterwards)."""
        self.set_schedule(schedule)
        saved = random.getstate()
        random.seed(seed)
        try:
            best, best_energy = self.anneal()
        finally:
            random.setstate(saved)
        return best, float(best_energy)


class MovingAnnealer(ReportingAnnealer):
    """simanneal over any state: ``move(state, rng)`` changes it in place (its result is ignored, so simanneal
    calls ``energy(state)`` after every move) and ``copy(state)`` replaces simanneal's generic ``deepcopy``."""

    def __init__(self, state: Any, energy: Callable[[Any], float], move: Callable[[Any, np.random.Generator], object],
                 copy: Callable[[Any], Any], rng: np.random.Generator, progress: Progress | None) -> None:
        self._energy, self._move, self._copy = energy, move, copy  # simanneal copies the state while it initialises
        super().__init__(state, rng, progress)

    def copy_state(self, state: Any) -> Any:
        return self._copy(state)

    def move(self) -> float | None:
        self._move(self.state, self._rng)
        return None

    def energy(self) -> float:
        return self._energy(self.state)
