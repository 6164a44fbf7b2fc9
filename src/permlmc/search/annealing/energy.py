"""The simulated-annealing energy (Entezari et al. 2022, App. A.4): the barrier at alpha = 1/2,

    E(pi) = L((theta_A + P(theta_B, pi)) / 2) - (L(theta_A) + L(theta_B)) / 2,

with L the error (the paper's code) or the cross-entropy on a fixed training subset. The endpoint term does not
depend on pi (a permutation leaves B's function unchanged), so one energy costs one forward pass of the midpoint
network. :class:`MidpointEnergy` computes exactly that for any architecture; :mod:`permlmc.search.annealing.incremental`
updates it after a move instead, for chains of dense layers.

The annealer's state is one permutation (int64 array) per name; a move swaps two random units in each. The members
of a heads group (attention, :class:`~permlmc.axes.Heads`) move so that they keep whole heads, every member's
alike: a move of the group swaps two whole heads in every member (with probability :data:`HEAD_SWAP`, when it has two
heads or more) or else, in each member independently, two units within one random head of that member. A swap of
units keeps every head where it is; a swap of heads exchanges the same two heads, with their orders within, in every
member. A group with blocks of one unit only swaps heads (its members move as one permutation), a group of one head
only swaps units within it. Specs without heads groups draw one swap per permutation, as simanneal's own move does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.func import vmap

from permlmc.axes import Heads
from permlmc.evaluation import METRICS, evaluate, measure
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.search.base import SearchData
from permlmc.types import StateDict

State = dict[str, np.ndarray]
"""Permutation name -> int64 array of shape (n,) (the :data:`permlmc.types.Permutation` convention)."""
Position = int | np.ndarray
"""One unit, or the units of one whole head (an int64 array of ``block`` positions)."""
Swaps = dict[str, tuple[Position, Position]]
"""Permutation name -> the two positions (or heads) a move exchanged (names that did not move are absent)."""
HEAD_SWAP = 0.5
"""Probability that a move of a heads group swaps two whole heads rather than two units within a head (module doc)."""


def draw_swaps(state: State, rng: np.random.Generator, heads: Sequence[Heads] = ()) -> Swaps:
    """Two distinct random units of every permutation of width >= 2, the members of ``heads`` moved as groups
    (module doc; ``state`` is left as it is)."""
    swaps: Swaps = {}
    grouped = {name: group for group in heads for name in group.members}
    drawn: set[Heads] = set()
    for name, p in state.items():
        group = grouped.get(name)
        if group is None:
            if len(p) >= 2:
                i, j = rng.choice(len(p), size=2, replace=False)
                swaps[name] = (int(i), int(j))
        elif group not in drawn:  # the whole group, at its first member
            drawn.add(group)
            swaps |= draw_group_swaps(group, len(p), rng)
    return swaps


def draw_group_swaps(group: Heads, units: int, rng: np.random.Generator) -> Swaps:
    """One move of a heads group whose members each have ``units`` units (module doc): two whole heads swapped in
    every member, or two units within one head swapped in each member (its own head and units)."""
    heads, block = units // group.head_size, group.head_size
    if heads >= 2 and (block < 2 or rng.random() < HEAD_SWAP):
        a, b = rng.choice(heads, size=2, replace=False)
        within = np.arange(block)
        first, second = int(a) * block + within, int(b) * block + within  # (block,) each
        return {name: (first, second) for name in group.members}
    if block < 2:
        return {}
    swaps: Swaps = {}
    for name in group.members:
        head = int(rng.integers(0, heads)) * block
        i, j = rng.choice(block, size=2, replace=False)
        swaps[name] = (head + int(i), head + int(j))
    return swaps


def draw_proposals(state: State, rng: np.random.Generator, count: int, heads: Sequence[Heads] = ()) -> list[Swaps]:
    """``count`` independent moves from ``state`` (left as it is). One move is :func:`draw_swaps`'s draw, so a
    run of one-move rounds consumes ``rng`` as simanneal's loop does; several are drawn at once, each pair
    uniform over distinct positions as ``draw_swaps`` draws it (a heads group: each move as ``draw_swaps``)."""
    if count == 1:
        return [draw_swaps(state, rng, heads)]
    grouped = {name: group for group in heads for name in group.members}
    drawn: set[Heads] = set()
    pairs = {}
    moves: list[Swaps] = [{} for _ in range(count)]  # of the heads groups
    for name, p in state.items():
        group = grouped.get(name)
        if group is None:
            if len(p) >= 2:
                i = rng.integers(0, len(p), count)
                j = rng.integers(0, len(p) - 1, count)
                pairs[name] = (i, j + (j >= i))
        elif group not in drawn:
            drawn.add(group)
            for move in moves:
                move |= draw_group_swaps(group, len(p), rng)
    return [{name: (int(i[k]), int(j[k])) for name, (i, j) in pairs.items()} | moves[k] for k in range(count)]


def apply_swaps(state: State, swaps: Swaps) -> State:
    """Exchange the entries ``swaps`` names, in place (a swap is its own inverse); return ``state``."""
    for name, (i, j) in swaps.items():
        p = state[name]
        p[i], p[j] = p[j], p[i]  # of two heads: the right side's fancy indexing copies them first
    return state


def swap_move(state: State, rng: np.random.Generator, heads: Sequence[Heads] = ()) -> Swaps:
    """One move (:func:`draw_swaps`) applied to ``state`` in place; return the swapped positions."""
    swaps = draw_swaps(state, rng, heads)
    apply_swaps(state, swaps)
    return swaps


def swapped(state: State, swaps: Swaps) -> State:
    """A copy of ``state`` with ``swaps`` applied."""
    return apply_swaps({name: p.copy() for name, p in state.items()}, swaps)


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
        return float(measure(logits, self.data.y, self.metric)) - self.endpoint_mean

    def trial(self, moved: State, swaps: Swaps) -> float:
        return self(moved)

    @torch.no_grad()
    def many(self, state: State, proposals: Sequence[Swaps]) -> Tensor:
        """Energies of ``state`` with each proposal applied, (K,) float64 on the data's device: the K midpoint
        networks stacked and evaluated by one vectorised forward pass (``state`` itself is left as it is)."""
        mids = [self.midpoint(swapped(state, swaps)) for swaps in proposals]
        stacked = {key: torch.stack([mid[key] for mid in mids]) for key in mids[0]}
        logits = vmap(self.data.forward, in_dims=(0, None))(stacked, self.data.x)  # (K, N, classes)
        return measure(logits, self.data.y, self.metric) - self.endpoint_mean

    def take(self, index: int) -> None:
        """Make proposal ``index`` of the last :meth:`many` current (nothing is cached here)."""

    def largest_round(self) -> int:
        """Most proposals one :meth:`many` may hold in memory: unbounded here (K stacked networks and their
        activations; the caller chooses K)."""
        return 2**31
