"""Rounds of K candidate moves for the incremental energy (:class:`permlmc.search.annealing.incremental
.ChainMidpointEnergy`): the module doc's update of the cached activations with a leading candidate axis, ``(K, h_1,
N)`` copies of ``Z_1`` from one ``baddbmm`` and the later layers with each candidate's permuted weights stacked;
:meth:`~ChainRounds.take` copies the chosen candidate's rows into the cache in place. On a GPU each round size is
captured once as a CUDA graph and replayed. Used by :mod:`permlmc.search.annealing.rounds`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import Tensor

from permlmc.evaluation import measure
from permlmc.search.annealing.energy import State, Swaps

if TYPE_CHECKING:
    from permlmc.search.annealing.incremental import DenseLayer

ACCUMULATE = torch.float64
"""dtype of the cached activations that moves update in place (as in :mod:`permlmc.search.annealing.incremental`)."""
ROUND_BYTES = 2**30
"""Bound on the memory of one round of candidate moves (:meth:`ChainRounds.many`)."""


class Moves:
    """What K proposals change, as device tensors: per hidden layer ``l``, the swapped positions ``units[l]``
    (K, 2), the entries of ``p_l`` that land there (``sources[l]``, (K, 2)) and, for ``l >= 1``, every
    candidate's whole permutation ``perms[l]`` (K, h_l); ``perms`` has ``None`` for layer 0 and the head. All of
    it is views of one int64 tensor, filled from :func:`pack_moves` in one copy from the host."""

    def __init__(self, flat: Tensor, k: int, widths: list[int]) -> None:
        views, start = [], 0
        for layer, width in enumerate(widths):
            for columns in (2, 2) if layer == 0 else (2, 2, width):
                views.append(flat[start : start + k * columns].view(k, columns))
                start += k * columns
        later = range(2, len(views), 3)  # layer l >= 1 starts at view 2 + 3 (l - 1): units, sources, perms
        self.units = [views[0]] + [views[v] for v in later]
        self.sources = [views[1]] + [views[v + 1] for v in later]
        self.perms: list[Tensor | None] = [None, *(views[v + 2] for v in later), None]


def pack_moves(perms: State, names: list[str], proposals: Sequence[Swaps]) -> np.ndarray:
    """The flat int64 array that  views, for ``proposals`` from the permutations ``perms``."""
    k, rows = len(proposals), np.arange(len(proposals))
    parts: list[np.ndarray] = []
    for layer, name in enumerate(names):
        p = perms[name]
        i, j = (np.array([swaps[name][side] for swaps in proposals], dtype=np.int64) for side in (0, 1))
        parts += [np.stack([i, j], axis=1), np.stack([p[j], p[i]], axis=1)]
        if layer > 0:
            every = np.repeat(p[None], k, axis=0)
            every[rows, i], every[rows, j] = p[j], p[i]
            parts.append(every)
    return np.concatenate([part.reshape(-1) for part in parts])


class RoundGraphs:
    """One CUDA graph per round size of :meth:`ChainRounds._evaluate`: a round then costs one copy of
    the moves to the device, one graph launch and one read of the energies, instead of some forty kernel launches
    from Python, which bound a step on a GPU at width 64. A graph reads the cache where it was when captured, so
    all graphs are dropped when the cache moves (a reset, or the one-move path's buffer swap)."""

    def __init__(self) -> None:
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, Tensor, Moves, tuple[Tensor, Tensor, Tensor]]] = {}
        self.addresses: tuple[int, ...] = ()

    def run(self, energy: ChainRounds, flat: np.ndarray, k: int) -> tuple[Moves, tuple[Tensor, ...]]:
        addresses = energy.cache_addresses()
        if addresses != self.addresses:
            self.graphs.clear()
            self.addresses = addresses
        if k not in self.graphs:
            static = torch.from_numpy(flat).to(energy.device)
            moved = Moves(static, k, energy.widths)
            side = torch.cuda.Stream(energy.device)
            side.wait_stream(torch.cuda.current_stream(energy.device))
            with torch.cuda.stream(side):  # warm-up outside the capture (workspaces, cuBLAS handles)
                energy._evaluate(moved, k)
            torch.cuda.current_stream(energy.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = energy._evaluate(moved, k)
            self.graphs[k] = (graph, static, moved, out)
        graph, static, moved, out = self.graphs[k]
        static.copy_(torch.from_numpy(flat))
        graph.replay()
        return moved, out


class Round(NamedTuple):
    """What :meth:`ChainRounds.many` computed, kept for :meth:`~ChainRounds.take`."""

    proposals: list[Swaps]
    moved: Moves
    new_rows: Tensor
    z1: Tensor
    values: Tensor


class ChainRounds:
    """The round path of :class:`~permlmc.search.annealing.incremental.ChainMidpointEnergy`, mixed into it: what it
    reads of that energy is declared here, the energy sets it."""

    layers: list[DenseLayer]
    halves: list[tuple[Tensor, Tensor, Tensor, Tensor]]
    widths: list[int]
    device: torch.device
    dtype: torch.dtype
    y: Tensor
    metric: str
    endpoint_mean: float
    p0: str
    za0: Tensor
    zb0: Tensor
    h0: Tensor
    z1: Tensor
    value: float
    _perm: State
    _index: dict[str, Tensor]
    _pending: object | None
    _batch: Round | list[Swaps] | None
    _graphs: RoundGraphs | None

    def holds(self, state: State) -> bool:
        raise NotImplementedError

    def reset(self, state: State) -> float:
        raise NotImplementedError

    def trial(self, moved: State, swaps: Swaps) -> float:
        raise NotImplementedError

    def propose(self, swaps: Swaps) -> float:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def _columns(self, units: Tensor, sources: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def many(self, state: State, proposals: Sequence[Swaps]) -> Tensor:
        """Energies of ``state`` with each of K proposals applied, (K,) float64 on the device, from one vectorised
        update of the cache (the module doc's update with a leading candidate axis); ``state`` stays current and
        :meth:`take` makes one proposal current without further arithmetic. Values agree with :meth:`propose`
        up to float rounding (the rows of ``Z_1`` a move recomputes are summed in another order)."""
        if self._pending is not None:
            raise RuntimeError("commit() or discard() the previous proposal first")
        if not self.holds(state):
            self.reset(state)
        names = [str(layer.out) for layer in self.layers[:-1]]
        if any(name not in swaps for swaps in proposals for name in names):  # a hidden layer of width 1
            self._batch = list(proposals)
            each = [self.trial(state, swaps) for swaps in proposals]
            return torch.tensor(each, dtype=torch.float64, device=self.device)
        k, flat = len(proposals), pack_moves(self._perm, names, proposals)
        if self._graphs is not None:
            try:
                moved, (values, new_rows, z1) = self._graphs.run(self, flat, k)
            except RuntimeError as err:  # a capture this torch or driver refuses: the same work, launched eagerly
                warnings.warn(f"SA rounds run without CUDA graphs: {err}", RuntimeWarning, stacklevel=2)
                self._graphs = None
        if self._graphs is None:
            moved = Moves(torch.from_numpy(flat).to(self.device), k, self.widths)
            values, new_rows, z1 = self._evaluate(moved, k)
        self._batch = Round(list(proposals), moved, new_rows, z1, values)
        return values

    def largest_round(self) -> int:
        """Proposals whose vectorised update fits in :data:`ROUND_BYTES`: per candidate ``Z_1`` in float64, two rows
        of ``H_0``, and every later layer's input and output activations."""
        rows = [int(half[0].shape[0]) for half in self.halves]  # h_0 .. h_d (h_d: classes)
        size = self.halves[0][0].element_size()
        later = sum(rows[index - 1] + rows[index] for index in range(2, len(rows)))
        each = len(self.y) * (rows[1] * ACCUMULATE.itemsize + 2 * size + later * size)
        return max(1, ROUND_BYTES // each)

    def cache_addresses(self) -> tuple[int, ...]:
        """Where the cache that :meth:`_evaluate` reads lives (a CUDA graph replays reads of these addresses)."""
        return (self.z1.data_ptr(), self.h0.data_ptr(), *(t.data_ptr() for t in self._index.values()))

    def _evaluate(self, moved: Moves, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """(energies (K,), new rows of ``H_0`` (K, 2, N), ``Z_1`` (K, h_1, N)) of K moves: device work only, no
        host synchronisation and no change to the cache, so that a CUDA graph can capture it."""
        n = self.h0.shape[1]
        units, sources = moved.units[0].reshape(-1), moved.sources[0].reshape(-1)  # (2K,)
        new_rows = torch.relu(self.za0.index_select(0, units) + self.zb0.index_select(0, sources))  # (2K, N)
        old_rows = self.h0.index_select(0, units)
        new_cols, old_cols = self._columns(units, sources), self._columns(units)  # (h_1, 2K) each
        change = torch.cat([new_cols, -old_cols], dim=1).reshape(-1, 2, k, 2)
        change = change.permute(2, 0, 1, 3).reshape(k, -1, 4)  # (K, h_1, 4): [new i, new j, -old i, -old j]
        rows = torch.stack([new_rows.view(k, 2, n), old_rows.view(k, 2, n)], dim=1).reshape(k, 4, n)
        z1 = torch.baddbmm(self.z1.expand(k, -1, -1), change, rows.to(ACCUMULATE))  # (K, h_1, N)
        if len(self.layers) > 2:
            recomputed = self._moved_rows(moved, new_rows.view(k, 2, n), old_rows.view(k, 2, n))  # (K, 2, N)
            z1.scatter_(1, moved.units[1][:, :, None].expand(-1, -1, n), recomputed.to(ACCUMULATE))
        logits = z1
        for index in range(2, len(self.layers)):
            w, c = self._stacked_layer(index, moved)
            activations = torch.relu(logits) if logits.dtype == self.dtype else logits.to(self.dtype).relu_()
            logits = torch.baddbmm(c[:, :, None], w, activations)
        values = measure(logits, self.y, self.metric, class_dim=1) - self.endpoint_mean
        return values, new_rows.view(k, 2, n), z1

    def _moved_rows(self, moved: Moves, new_rows: Tensor, old_rows: Tensor) -> Tensor:
        """Rows ``i_1, j_1`` of every candidate's ``Z_1``, whose weights all moved: (K, 2, N) in the parameters'
        dtype, as ``W H_0`` with the two changed rows of ``H_0`` corrected through the matching columns."""
        w_a, w_b, c_a, c_b = self.halves[1]
        units1, sources1, units0 = moved.units[1], moved.sources[1], moved.units[0]  # (K, 2) each
        w = w_a[units1] + w_b[sources1].index_select(2, self._index[self.p0])  # (K, 2, h_0)
        cols_now = w.gather(2, units0[:, None, :].expand(-1, 2, -1))  # (K, 2, 2): columns i_0, j_0 before
        cols_new = (w_a[units1].gather(2, units0[:, None, :].expand(-1, 2, -1))
                    + w_b[sources1].gather(2, moved.sources[0][:, None, :].expand(-1, 2, -1)))
        bias = (c_a[units1] + c_b[sources1])[:, :, None]
        return torch.matmul(w, self.h0) + bias - torch.bmm(cols_now, old_rows) + torch.bmm(cols_new, new_rows)

    def _stacked_layer(self, index: int, moved: Moves) -> tuple[Tensor, Tensor]:
        """Every candidate's midpoint weight (K, h_l, h_{l-1}) and bias (K, h_l) of layer ``index`` >= 2."""
        w_a, w_b, c_a, c_b = self.halves[index]
        rows, cols = moved.perms[index], moved.perms[index - 1]  # (K, h_l) or None, (K, h_{l-1})
        assert cols is not None  # layer index - 1 >= 1 is a hidden layer past the first
        if rows is None:
            return w_a + w_b[:, cols].permute(1, 0, 2), (c_a + c_b).expand(len(cols), -1)
        return w_a + w_b[rows[:, :, None], cols[:, None, :]], c_a + c_b[rows]

    def take(self, index: int) -> None:
        """Make proposal ``index`` of the last :meth:`many` current: a copy of what that call computed."""
        batch, self._batch = self._batch, None
        if batch is None:
            raise RuntimeError("take() needs a preceding many()")
        if isinstance(batch, list):  # many() evaluated these proposals one by one
            self.propose(batch[index])
            self.commit()
            return
        for layer, name in enumerate(str(layer.out) for layer in self.layers[:-1]):
            i, j = batch.proposals[index][name]
            p = self._perm[name]
            p[i], p[j] = p[j], p[i]
            # the device's copy, without a copy from the host (on the CPU it shares the array: same values again)
            self._index[name].index_copy_(0, batch.moved.units[layer][index], batch.moved.sources[layer][index])
        self.h0.index_copy_(0, batch.moved.units[0][index], batch.new_rows[index])
        self.z1.copy_(batch.z1[index])  # in place: the CUDA graphs read the cache where it is
        self.value = float(batch.values[index])
