"""The midpoint energy of a chain of dense layers (an MLP), updated after each move instead of recomputed.

Layers ``l = 0..d`` (``d`` hidden ReLU layers and a linear head) have half-weights ``A_l, B_l`` (h_l, h_{l-1})
and half-biases ``a_l, b_l`` (h_l,) of the two endpoints. Permutation ``p_l`` orders the output units of layer
``l`` (rows of ``W_l``, entries of its bias) and the input columns of layer ``l + 1``; ``p_{-1}`` (the input) and
``p_d`` (the classes) are the identity. The midpoint network (App. A.4: SA energy at alpha = 1/2) is

    M_l = A_l + B_l[p_l][:, p_{l-1}],   m_l = a_l + b_l[p_l],
    Z_0 = M_0 x^T + m_0,   Z_l = M_l relu(Z_{l-1}) + m_l,   logits = Z_d            (units, N) each.

Activations are kept feature-major, ``(units, N)``, so a unit is one contiguous row and the logits ``(classes,
N)`` reduce over contiguous rows. A move swaps units ``(i_l, j_l)`` of every ``p_l``; then

* layer 0: ``Z_0[k] = ZA_0[k] + ZB_0[p_0[k]]`` with ``ZA_0 = A_0 x^T + a_0`` and ``ZB_0 = B_0 x^T + b_0`` computed
  once, so rows ``i_0, j_0`` of ``H_0 = relu(Z_0)`` are two gathers: O(N);
* layer 1: only columns ``i_0, j_0`` of ``M_1`` and rows ``i_0, j_0`` of ``H_0`` changed for the other outputs,
  so ``Z_1 += M_1'[:, u] H_0'[u] - M_1[:, u] H_0[u]`` (``u = (i_0, j_0)``; a rank-4 update, O(4 h_1 N)), and rows
  ``i_1, j_1`` of ``Z_1``, whose weights all moved, are recomputed: O(2 h_0 N);
* layers 2..d see a changed input everywhere and are recomputed: O(h_l h_{l-1} N) each.

Depth 1 thus costs O(classes N) per move (the update and the error or loss over the logits) against
O(h D N) for a full forward pass. ``H_0`` and ``Z_1`` (the logits at depth 1) are the cached state. Rows of
``H_0`` are always recomputed from ``ZA_0, ZB_0``, never accumulated, so they stay in the parameters' dtype;
``Z_1`` accumulates one update per accepted move and is kept in float64, where a whole run drifts by ~1e-16 per
move rather than float32's ~1e-7. Later layers are recomputed each move in the parameters' dtype, as the full
forward pass does. Memory: ``3 h_0 N`` values of the parameters' dtype and ``2 h_1 N`` float64 values.

A proposal (:meth:`ChainMidpointEnergy.propose`) keeps the cache of the current state recoverable: the new ``Z_1``
goes to a second buffer and the two overwritten rows of ``H_0`` are saved, so :meth:`~ChainMidpointEnergy.commit`
swaps buffers and :meth:`~ChainMidpointEnergy.discard` copies two rows back; neither does arithmetic.

A round of K proposals (:meth:`ChainMidpointEnergy.many`, for :mod:`permlmc.search.annealing.rounds`) is the same
update with a leading candidate axis (:mod:`permlmc.search.annealing.chain_rounds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from permlmc.axes import whole
from permlmc.evaluation import measure
from permlmc.permutation import PermutationSpec
from permlmc.search.annealing.chain_rounds import ChainRounds, RoundGraphs
from permlmc.search.annealing.energy import MidpointEnergy, State, Swaps
from permlmc.search.base import SearchData
from permlmc.types import StateDict

ACCUMULATE = torch.float64
"""dtype of the cached activations that moves update in place."""
CHUNK = 4096
"""Examples per block when projecting the inputs once."""


@dataclass(frozen=True)
class DenseLayer:
    """State-dict keys of one dense layer and the permutations of its output rows and input columns."""

    weight: str
    bias: str | None
    out: str | None
    inp: str | None


def dense_chain(spec: PermutationSpec, params: StateDict) -> list[DenseLayer] | None:
    """The layers of ``spec`` from input to output if they form a chain of dense layers, else ``None``.

    A chain: every entry is a 2-d ``<prefix>.weight`` with axes ``(out, inp)`` or its 1-d ``<prefix>.bias`` with
    axes ``(out,)``; every permutation acts on exactly the rows (and bias) of one layer and the columns of another;
    following those links from the one layer with unpermuted inputs visits every layer and ends at one with
    unpermuted outputs, and no permutation is restricted to whole attention heads (the update swaps single units).
    Nothing here names an architecture; an MLP's spec is such a chain, a CNN's is not.
    """
    if spec.structured or spec.heads:
        return None
    layers: list[DenseLayer] = []
    for key, axes in spec.axes.items():
        if not key.endswith(".weight"):
            continue
        if key not in params or params[key].ndim != 2 or len(axes) != 2:
            return None
        bias: str | None = key.removesuffix(".weight") + ".bias"
        if bias in spec.axes:
            if bias not in params or params[bias].ndim != 1 or tuple(spec.axes[bias]) != (axes[0],):
                return None
        else:
            bias = None
        layers.append(DenseLayer(key, bias, whole(axes[0]), whole(axes[1])))
    covered = {layer.weight for layer in layers} | {layer.bias for layer in layers if layer.bias is not None}
    if covered != set(spec.axes) or not spec.perm_to_axes:
        return None
    for name, places in spec.perm_to_axes.items():
        rows = [layer for layer in layers if layer.out == name]
        cols = [layer for layer in layers if layer.inp == name]
        if len(rows) != 1 or len(cols) != 1 or rows[0] is cols[0]:
            return None
        expected = {(rows[0].weight, 0), (cols[0].weight, 1)} | ({(rows[0].bias, 0)} if rows[0].bias else set())
        if len(places) != len(expected) or set(places) != expected:
            return None
    by_input = {layer.inp: layer for layer in layers}
    if len(by_input) != len(layers) or None not in by_input:
        return None
    chain = [by_input[None]]
    while chain[-1].out is not None and chain[-1].out in by_input and len(chain) <= len(layers):
        chain.append(by_input[chain[-1].out])
    return chain if len(chain) == len(layers) and chain[-1].out is None else None


class _Proposal(NamedTuple):
    swaps: Swaps
    units: Tensor
    """Rows of ``H_0`` the move overwrote, (k,) with k in {0, 2}, and their old values below, (k, N)."""
    old_rows: Tensor
    value: float


class ChainMidpointEnergy(ChainRounds, MidpointEnergy):
    """Midpoint energy with a cache of the current state's activations (module doc).

    Protocol: :meth:`reset` (or calling the energy on a state) makes a state current; :meth:`propose` returns the
    energy one move away; :meth:`commit` makes the proposal current or :meth:`discard` drops it, before the next
    proposal. :attr:`value` is the current state's energy.
    """

    def __init__(
        self, spec: PermutationSpec, a: StateDict, b: StateDict, data: SearchData, metric: str,
        layers: list[DenseLayer], graphs: bool = True,
    ) -> None:
        super().__init__(spec, a, b, data, metric)
        if len(layers) < 2:
            raise ValueError("a dense chain needs at least one hidden layer")
        if spec.heads:
            raise ValueError("the incremental energy swaps single units; it cannot keep attention heads whole")
        x = data.x.flatten(1)  # (N, D)
        if x.shape[1] != a[layers[0].weight].shape[1]:
            raise ValueError(f"inputs have {x.shape[1]} features, layer {layers[0].weight} takes "
                             f"{a[layers[0].weight].shape[1]}")
        self.layers, self.device, self.y = layers, x.device, data.y.to(x.device)
        self.p0 = str(layers[0].out)  # name of p_0 (a chain's first layer has permuted outputs)
        self.halves = [self._halves(layer) for layer in layers]  # (A_l, B_l, a_l, b_l)
        self.dtype = self.halves[0][0].dtype
        self.second = tuple(t.to(ACCUMULATE) for t in self.halves[1])
        a0, b0, c_a0, c_b0 = self.halves[0]
        self.za0, self.zb0 = self._project(a0, c_a0, x), self._project(b0, c_b0, x)  # (h_0, N) each
        self._perm: State = {}
        self._index: dict[str, Tensor] = {}
        self._pending: _Proposal | None = None
        self._batch = None
        self._graphs = RoundGraphs() if self.device.type == "cuda" and graphs else None
        self.widths = [int(half[0].shape[0]) for half in self.halves[:-1]]  # h_0 .. h_{d-1}
        self.h0 = self.z1 = self.spare = torch.empty(0)
        self.value = float("nan")

    def _halves(self, layer: DenseLayer) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        w_a, w_b = (half[layer.weight].to(self.device) for half in (self.half_a, self.half_b))
        if layer.bias is None:
            zero = w_a.new_zeros(w_a.shape[0])
            return w_a, w_b, zero, zero
        return w_a, w_b, self.half_a[layer.bias].to(self.device), self.half_b[layer.bias].to(self.device)

    def _project(self, w: Tensor, c: Tensor, x: Tensor) -> Tensor:
        """``w x^T + c``, (h, N), summed in float64 in blocks of examples."""
        w64, c64 = w.to(ACCUMULATE), c.to(ACCUMULATE)[:, None]
        out = torch.empty(w.shape[0], len(x), dtype=ACCUMULATE, device=self.device)
        for start in range(0, len(x), CHUNK):
            out[:, start : start + CHUNK] = torch.addmm(c64, w64, x[start : start + CHUNK].to(ACCUMULATE).T)
        return out.to(self.dtype)

    def _p(self, name: str | None) -> Tensor | None:
        return None if name is None else self._index[name]

    def _swap(self, swaps: Swaps) -> None:
        """Apply ``swaps`` to the cache's own permutations (a swap is its own inverse)."""
        for name, (i, j) in swaps.items():
            p = self._perm[name]
            p[i], p[j] = p[j], p[i]
            if self.device.type != "cpu":  # on the CPU the index tensor shares the array's memory
                self._index[name] = torch.from_numpy(p).to(self.device)

    def _units(self, swaps: Swaps, name: str | None) -> Tensor:
        units = swaps.get(name, ()) if name is not None else ()
        return torch.tensor(units, dtype=torch.int64, device=self.device)

    def _layer(self, index: int, halves: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        """Midpoint weight ``M_l`` (h_l, h_{l-1}) and bias ``m_l`` (h_l,) under the current permutations."""
        w_a, w_b, c_a, c_b = halves
        rows, cols = self._p(self.layers[index].out), self._p(self.layers[index].inp)
        if rows is not None:
            w_b, c_b = w_b.index_select(0, rows), c_b.index_select(0, rows)
        if cols is not None:
            w_b = w_b.index_select(1, cols)
        return w_a + w_b, c_a + c_b

    def _columns(self, units: Tensor, sources: Tensor | None = None) -> Tensor:
        """Columns ``units`` of ``M_1``, (h_1, k); with ``sources``, as if ``p_0[units]`` were ``sources``."""
        w_a, w_b, _, _ = self.second
        cols = w_b.index_select(1, self._index[self.p0].index_select(0, units) if sources is None else sources)
        rows = self._p(self.layers[1].out)
        return w_a.index_select(1, units) + (cols if rows is None else cols.index_select(0, rows))

    def _rows(self, units: Tensor) -> Tensor:
        """Rows ``units`` of ``Z_1`` recomputed from ``H_0`` in the parameters' dtype, (k, N), as float64."""
        w_a, w_b, c_a, c_b = self.halves[1]
        rows = self._index[str(self.layers[1].out)].index_select(0, units)
        w = w_a.index_select(0, units) + w_b.index_select(0, rows).index_select(1, self._index[self.p0])
        c = c_a.index_select(0, units) + c_b.index_select(0, rows)
        return torch.addmm(c[:, None], w, self.h0).to(ACCUMULATE)

    def _tail(self, z1: Tensor) -> Tensor:
        """Logits (classes, N) from ``Z_1`` through layers 2..d."""
        h = z1
        for index in range(2, len(self.layers)):
            w, c = self._layer(index, self.halves[index])
            h = torch.addmm(c[:, None], w, torch.relu(h) if h.dtype == self.dtype else h.to(self.dtype).relu_())
        return h

    def _measure(self, z1: Tensor) -> float:
        return float(measure(self._tail(z1), self.y, self.metric, class_dim=0)) - self.endpoint_mean

    def logits(self) -> Tensor:
        """The current state's midpoint logits, (classes, N)."""
        return self._tail(self.z1)

    @torch.no_grad()
    def reset(self, state: State) -> float:
        """Make ``state`` current, computing its cache from scratch; return its energy."""
        self._pending, self._batch = None, None
        self._perm = {name: np.array(p, dtype=np.int64) for name, p in state.items()}
        self._index = {name: torch.from_numpy(p).to(self.device) for name, p in self._perm.items()}
        p0 = self._index[self.p0]
        self.h0 = torch.relu(self.za0 + self.zb0.index_select(0, p0))  # (h_0, N)
        w, c = self._layer(1, self.second)
        self.z1 = torch.addmm(c[:, None], w, self.h0.to(ACCUMULATE))  # (h_1, N)
        self.spare = torch.empty_like(self.z1)
        self.value = self._measure(self.z1)
        return self.value

    def __call__(self, state: State) -> float:
        return self.reset(state)

    def holds(self, state: State) -> bool:
        """Whether ``state`` is the current state."""
        return state.keys() == self._perm.keys() and all(np.array_equal(state[k], p) for k, p in self._perm.items())

    @torch.no_grad()
    def propose(self, swaps: Swaps) -> float:
        """Energy of the current state with ``swaps`` applied (see the module doc for the update)."""
        if self._pending is not None:
            raise RuntimeError("commit() or discard() the previous proposal first")
        self._batch = None
        first, second = self.layers[0], self.layers[1]
        units, moved = self._units(swaps, first.out), self._units(swaps, second.out)
        old_rows, old_cols = self.h0.index_select(0, units), self._columns(units)  # (k, N), (h_1, k)
        self._swap(swaps)
        source = self._index[self.p0].index_select(0, units)
        new_rows = torch.relu(self.za0.index_select(0, units) + self.zb0.index_select(0, source))
        self.h0.index_copy_(0, units, new_rows)
        change = torch.cat([self._columns(units), -old_cols], dim=1)  # (h_1, 2k)
        z1 = torch.addmm(self.z1, change, torch.cat([new_rows, old_rows]).to(ACCUMULATE), out=self.spare)
        if len(moved):
            z1.index_copy_(0, moved, self._rows(moved))
        self._pending = _Proposal(swaps, units, old_rows, self._measure(z1))
        return self._pending.value

    def commit(self) -> None:
        if self._pending is None:
            raise RuntimeError("no proposal to commit")
        self.z1, self.spare = self.spare, self.z1
        self.value, self._pending = self._pending.value, None

    def discard(self) -> None:
        if self._pending is None:
            raise RuntimeError("no proposal to discard")
        self._swap(self._pending.swaps)
        self.h0.index_copy_(0, self._pending.units, self._pending.old_rows)
        self._pending = None

    def trial(self, moved: State, swaps: Swaps) -> float:
        """Energy one move (``swaps``) away from the current state, which stays current."""
        value = self.propose(swaps)
        self.discard()
        return value

    def agrees_with_forward(self, tolerance: float = 1e-4) -> bool:
        """Whether the cached logits match the network's own forward pass at a non-trivial permutation (every
        permutation reversed): a check that the network really is ``relu``-separated dense layers."""
        state = {name: np.arange(n)[::-1].copy() for name, n in self.spec.sizes(self.half_a).items()}
        self.reset(state)
        with torch.no_grad():
            theirs = self.data.forward(self.midpoint(state), self.data.x)  # (N, classes)
            mine = self.logits().T.to(theirs.dtype)
        if mine.shape != theirs.shape:
            return False
        return bool(((mine - theirs).abs() <= tolerance * (1 + theirs.abs().max())).all())
