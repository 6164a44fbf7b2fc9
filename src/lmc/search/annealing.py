"""Simulated annealing over permutations (Entezari et al. 2022, Alg. 1 and App. A.4), built on ``simanneal``.

State: one permutation per name in the spec. Move: swap two random units in every permutation. Energy: the
barrier at alpha = 1/2 between A and the permuted B on a fixed training subset,

    E(pi) = L((theta_A + P(theta_B, pi)) / 2) - (L(theta_A) + L(theta_B)) / 2,

with L the error (the paper's code) or the cross-entropy. The endpoint term does not depend on pi (a
permutation leaves B's function unchanged), so each step costs one forward pass of the midpoint network.

Schedules (temperature decays exponentially from ``tmax`` to ``tmin`` over ``steps``, as in simanneal):
``paper`` uses the paper's Tmax = 25000, Tmin = 2.5; on an energy in [0, 1] this accepts nearly every move,
so the search is close to a random walk that keeps its best state. ``calibrated`` (default) sets ``tmax`` so
that an average uphill move from the start is accepted with probability 0.8 and ``tmin`` so that the smallest
possible uphill move (one example's error, 1/n) is accepted with probability 0.01. ``custom`` takes both.
"""

from __future__ import annotations

import math
import random
import signal
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from simanneal import Annealer

from lmc.evaluation import evaluate
from lmc.permutation import PermutationSpec, apply_permutation, identity
from lmc.search.base import Progress, SearchData
from lmc.types import Permutation, StateDict

PAPER_SCHEDULE = {"tmax": 25000.0, "tmin": 2.5, "steps": 50000}
SCHEDULES = ("calibrated", "paper", "custom")
State = dict[str, np.ndarray]


class MidpointEnergy:
    """``E(pi)`` above, computed on permuted tensors with the model skeleton built once."""

    def __init__(self, spec: PermutationSpec, a: StateDict, b: StateDict, data: SearchData, metric: str) -> None:
        if metric not in ("error", "loss"):
            raise ValueError(f"SA metric must be 'error' or 'loss', got {metric!r}")
        self.spec, self.data, self.metric = spec, data, metric
        self.half_a = {k: v * 0.5 if v.is_floating_point() else v for k, v in a.items()}
        self.half_b = {k: v * 0.5 if v.is_floating_point() else v for k, v in b.items()}
        ends = [evaluate(data.forward, p, data.x, data.y) for p in (a, b)]
        self.endpoint_mean = sum(getattr(m, metric) for m in ends) / 2

    @torch.no_grad()
    def __call__(self, state: State) -> float:
        perm = {name: torch.from_numpy(p) for name, p in state.items()}
        half_b = apply_permutation(self.spec, perm, self.half_b)
        mid = {k: v + half_b[k] if v.is_floating_point() else v for k, v in self.half_a.items()}
        logits = self.data.forward(mid, self.data.x)  # (N, classes)
        if self.metric == "error":
            value = float((logits.argmax(dim=1) != self.data.y).double().mean())
        else:
            value = float(F.cross_entropy(logits, self.data.y))
        return value - self.endpoint_mean


def swap_move(state: State, rng: np.random.Generator) -> None:
    """Swap two distinct random units in every permutation of width >= 2 (in place)."""
    for p in state.values():
        if len(p) >= 2:
            i, j = rng.choice(len(p), size=2, replace=False)
            p[i], p[j] = p[j], p[i]


class _PermutationAnnealer(Annealer):
    copy_strategy = "deepcopy"

    def __init__(
        self, state: State, energy: MidpointEnergy, rng: np.random.Generator, progress: Progress | None
    ) -> None:
        previous = signal.getsignal(signal.SIGINT)
        super().__init__(initial_state=state)
        # simanneal turns Ctrl-C into "stop early and return the best state"; an interrupted job must fail
        # instead of writing a result that looks finished.
        signal.signal(signal.SIGINT, previous)
        self._energy, self._rng, self._progress = energy, rng, progress

    def move(self) -> None:
        swap_move(self.state, self._rng)

    def energy(self) -> float:
        return self._energy(self.state)

    def update(self, step: int, T: float, E: float, acceptance: float | None, improvement: float | None) -> None:
        if self._progress is not None:
            self._progress({
                "event": "step", "step": step, "temperature": T, "energy": E,
                "best_energy": getattr(self, "best_energy", E), "acceptance": acceptance,
                "improvement": improvement,
            })


def calibrate(energy: MidpointEnergy, state: State, rng: np.random.Generator, moves: int) -> tuple[float, float]:
    """Temperatures from the energy changes of ``moves`` single moves away from ``state`` (see module doc)."""
    start = energy(state)
    deltas = []
    for _ in range(moves):
        trial = {k: v.copy() for k, v in state.items()}
        swap_move(trial, rng)
        deltas.append(energy(trial) - start)
    uphill = np.asarray([d for d in deltas if d > 1e-12])
    quantum = 1.0 / len(energy.data.y) if energy.metric == "error" else float(uphill.min(initial=1e-4))
    tmax = float(uphill.mean()) / math.log(1 / 0.8) if len(uphill) else 10 * quantum
    tmin = quantum / math.log(100)
    return max(tmax, 10 * tmin), tmin


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
    **options: Any,
) -> Permutation:
    if options:
        raise TypeError(f"sa got unknown options {sorted(options)}")
    if data is None:
        raise ValueError("sa needs SearchData (network function and a training subset) to compute its energy")
    if schedule not in SCHEDULES:
        raise ValueError(f"sa schedule {schedule!r} is unknown; choose one of {SCHEDULES}")
    seeds = torch.randint(0, 2**62, (2,), generator=generator).tolist()
    rng = np.random.default_rng(seeds[0])
    energy = MidpointEnergy(spec, params_a, params_b, data, metric)
    state = {name: p.numpy().copy() for name, p in identity(spec, params_b).items()}
    if schedule == "paper":
        tmax, tmin = PAPER_SCHEDULE["tmax"], PAPER_SCHEDULE["tmin"]
        steps = int(PAPER_SCHEDULE["steps"]) if steps is None else steps
    elif schedule == "calibrated":
        tmax, tmin = calibrate(energy, state, rng, calibration_moves)
    elif tmax is None or tmin is None:
        raise ValueError("sa schedule 'custom' needs both tmax and tmin")
    steps = 1000 if steps is None else int(steps)
    if progress is not None:
        progress({"event": "schedule", "schedule": schedule, "tmax": tmax, "tmin": tmin, "steps": steps,
                  "metric": metric})
    annealer = _PermutationAnnealer(state, energy, rng, progress)
    annealer.set_schedule({"tmax": tmax, "tmin": tmin, "steps": steps, "updates": updates})
    saved = random.getstate()
    random.seed(seeds[1])  # simanneal draws its acceptance tests from the global `random` module
    try:
        best, best_energy = annealer.anneal()
    finally:
        random.setstate(saved)
    if progress is not None:
        progress({"event": "done", "best_energy": best_energy, "steps": steps})
    return {name: torch.as_tensor(p, dtype=torch.int64) for name, p in best.items()}
