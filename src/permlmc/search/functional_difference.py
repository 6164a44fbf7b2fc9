"""Functional difference matching (Entezari et al. 2022, App. B, Eq. 2; after He et al. 2018, "Multi-task
zipping via layer-wise neuron sharing", Eq. 12).

The distance between unit ``i`` of A and unit ``j`` of B in one layer compares their incoming weights under the
layer-wise Hessian, which He et al. approximate by the second moment of the layer's input (the previous layer's
post-activations, :mod:`permlmc.search.features`), ``H = E[h h^T]``:

    delta_ij = 1/2 (w_i^A - w_j^B)^T ((H^A)^-1 + (H^B)^-1)^-1 (w_i^A - w_j^B).

The units are then paired *greedily*, as in the paper: take the globally smallest entry of the (m, m) distance
matrix, pair its row and column, remove both, repeat (ties: lowest row, then lowest column).

Generic over a :class:`PermutationSpec`, for a permutation name ``P``:

* The incoming weights of ``P``'s units are the rows of every entry with ``P`` on axis 0 and more than one axis
  (Linear and Conv weights); axis 1 is the input, read by name ``Q``, whose Hessians come from ``Q``'s features
  in A and in B (B's units reordered by the current ``pi_Q``, so B's inputs are compared after B's previous layer
  has been permuted). For the layer that reads the network input (the first weight entry with an unpermuted
  input axis matching the data) the Hessian is the second moment of the data, the same in A and B; another
  ``Q = None`` (an unpermuted residual stream) has no features here and its Hessian is taken as the identity.
  Where several entries carry ``P`` (a residual stream written by many blocks) their distances add up.
* A conv kernel ``(out, in, kh, kw)`` is a stack of ``kh * kw`` incoming vectors of length ``in``, each weighted
  by the channel Hessian of ``Q`` (spatial positions are samples of it): ``delta`` sums over kernel positions,
  i.e. the Hessian of the flattened kernel is approximated by ``I_{kh kw} (x) H``, ignoring correlations between
  neighbouring pixels.
* Per-unit vectors with ``P`` on their only axis (biases, BatchNorm weights, biases and running statistics) are
  weights on a constant input 1 (Hessian 1), adding ``1/4 (v_i^A - v_j^B)^2``.
* The Hessians get a ridge ``damping * mean(diag H)`` so that dead units (zero rows of ``H``) keep them
  invertible.

The members of an attention heads group (:class:`~permlmc.axes.Heads`) are paired together, greedily in two
levels (:func:`greedy_head_matching`): within every pair of heads (``a`` of A, ``b`` of B) each member's units are
paired greedily on its ``(block, block)`` distances; the heads are then paired greedily on the sums over members of
those pairings' distances.

Names are processed in the forward order of their units (a heads group where its first member stands). In the first
pass an entry whose input ``Q`` has not been matched yet (a residual stream that reads blocks later in the network) is
left out of ``P``'s distance (unless every entry of ``P`` would be); later passes use every entry, until a pass
changes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from permlmc.axes import whole
from permlmc.permutation import PermutationSpec, identity
from permlmc.search.base import Progress, SearchData
from permlmc.search.features import BATCH, Moments, moments
from permlmc.types import Permutation, StateDict


def greedy_matching(distance: Tensor) -> Tensor:
    """``pi`` with ``pi[i] = j`` for the pairs taken in increasing order of ``distance[i, j]`` (module doc)."""
    n = distance.shape[0]
    flat = np.argsort(distance.detach().cpu().numpy().ravel(), kind="stable")  # ties: row-major order
    cols = np.full(n, -1, dtype=np.int64)
    row_free, col_free = np.ones(n, dtype=bool), np.ones(n, dtype=bool)
    taken = 0
    for index in flat.tolist():
        i, j = divmod(index, n)
        if row_free[i] and col_free[j]:
            cols[i], row_free[i], col_free[j] = j, False, False
            taken += 1
            if taken == n:
                break
    return torch.from_numpy(cols)


def greedy_head_matching(distances: list[Tensor], block: int) -> list[Tensor]:
    """:func:`greedy_matching` of a heads group's members, keeping whole heads of ``block`` units, every member's
    alike (module doc): ``pi_m`` per member from its ``(n, n)`` distances ``distances[m]``."""
    n = distances[0].shape[0]
    heads, rows = n // block, torch.arange(block)
    cost = torch.zeros((heads, heads), dtype=torch.float64)
    inner = torch.zeros((len(distances), heads, heads, block), dtype=torch.int64)
    for m, distance in enumerate(distances):
        blocks = distance.reshape(heads, block, heads, block).transpose(1, 2)  # (a, b, i, k)
        for a in range(heads):
            for b in range(heads):
                inner[m, a, b] = greedy_matching(blocks[a, b])
                cost[a, b] += float(blocks[a, b][rows, inner[m, a, b]].sum())
    order = greedy_matching(cost)  # (heads,): head order[a] of B goes to head a
    return [(order[:, None] * block + inner[m, torch.arange(heads), order]).reshape(-1) for m in range(len(distances))]


def combined_hessian(h_a: Tensor, h_b: Tensor, damping: float) -> Tensor:
    """``((H_A + r I)^-1 + (H_B + r I)^-1)^-1 = H_A' (H_A' + H_B')^-1 H_B'`` with ridge ``r`` (module doc)."""
    n = h_a.shape[0]
    scale = float((h_a.diagonal().mean() + h_b.diagonal().mean()) / 2)
    ridge = damping * (scale if scale > 0 else 1.0) * torch.eye(n, dtype=h_a.dtype, device=h_a.device)
    a, b = h_a + ridge, h_b + ridge
    m = a @ torch.linalg.solve(a + b, b)
    return (m + m.T) / 2  # symmetric in exact arithmetic


def _weight_distance(w_a: Tensor, w_b: Tensor, m: Tensor | None) -> Tensor:
    """``1/2 sum_t (a_i,t - b_j,t)^T M (a_i,t - b_j,t)`` for rows ``(n, in, T)``; ``M = I / 2`` when ``m`` is None."""
    ma = w_a / 2 if m is None else torch.einsum("kc,nct->nkt", m, w_a)  # (n, in, T)
    mb = w_b / 2 if m is None else torch.einsum("kc,nct->nkt", m, w_b)
    qa, qb = (ma * w_a).sum((1, 2)), (mb * w_b).sum((1, 2))  # (n,)
    cross = ma.flatten(1) @ w_b.flatten(1).T  # (n, n)
    return (qa[:, None] + qb[None, :] - 2 * cross) / 2


def input_hessian(spec: PermutationSpec, params: StateDict, x: Tensor) -> tuple[str, Tensor] | None:
    """(key, ``E[x x^T]``) for the weight entry reading the network input: the first entry (spec order) with more
    than one axis, no permutation on its input axis, and an input size matching ``x`` (flattened for a Linear,
    channels with spatial positions as samples for a conv); None when no entry fits."""
    for key, axes in spec.axes.items():
        if len(axes) < 2 or axes[1] is not None or not params[key].is_floating_point():
            continue
        width = params[key].shape[1]
        if params[key].ndim == 2 and width == x[0].numel():
            rows = x.flatten(1)  # (N, d)
        elif params[key].ndim == 4 and x.ndim == 4 and width == x.shape[1]:
            rows = x.movedim(1, -1).reshape(-1, width)  # (N * H * W, C)
        else:
            return None
        rows = rows.double()
        return key, (rows.T @ rows / len(rows)).cpu()
    return None


def _distance(
    spec: PermutationSpec, name: str, a: StateDict, b: StateDict, perm: Permutation, stats: dict[str, Moments],
    ready: set[str], damping: float, data_moment: tuple[str, Tensor] | None = None,
) -> tuple[Tensor, int]:
    """Distance matrix of ``name``'s units (A rows, B columns) and the number of entries left out (module doc)."""
    weights, vectors = [], []
    for key, axis in spec.perm_to_axes[name]:
        axes = spec.axes[key]
        if axis != 0 or not a[key].is_floating_point():
            continue
        if len(axes) == 1:
            vectors.append(key)
        elif any(q is not None for q in axes[2:]):
            raise ValueError(f"functional_difference: {key} has permuted axes beyond its input axis: {axes}")
        else:
            weights.append(key)
    usable = [k for k in weights if spec.axes[k][1] is None or spec.axes[k][1] in ready] or weights
    n = a[spec.perm_to_axes[name][0][0]].shape[spec.perm_to_axes[name][0][1]]
    total = torch.zeros((n, n), dtype=torch.float64)
    for key in usable:
        q = whole(spec.axes[key][1])
        w_a = a[key].double().flatten(2) if a[key].ndim > 2 else a[key].double()[:, :, None]  # (n, in, T)
        w_b = b[key].double().flatten(2) if b[key].ndim > 2 else b[key].double()[:, :, None]
        m = None
        if data_moment is not None and key == data_moment[0]:  # both networks read the same input
            m = combined_hessian(data_moment[1], data_moment[1], damping)
        elif q is not None:
            w_b = w_b.index_select(1, perm[q])
            p = perm[q].to(stats[q].bb.device)
            m = combined_hessian(stats[q].aa, stats[q].bb[p][:, p], damping).cpu()
        total += _weight_distance(w_a, w_b, m)
    for key in vectors:
        total += (a[key].double()[:, None] - b[key].double()[None, :]) ** 2 / 4
    return total, len(weights) - len(usable)


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    damping: float = 1e-4,
    max_passes: int = 10,
    batch_size: int = BATCH,
    **options: Any,
) -> Permutation:
    """Greedy functional-difference matching (module doc). ``damping``: ridge relative to the mean Hessian
    diagonal; ``max_passes``: bound on sweeps over the names. ``generator`` is unused (deterministic)."""
    if options:
        raise TypeError(f"functional_difference got unknown options {sorted(options)}")
    if data is None or data.features is None:
        raise ValueError("functional_difference needs SearchData with features (permlmc.search.features.unit_features)")
    spec.require_whole_axes("functional_difference")
    stats = moments(data.features, params_a, params_b, data.x, batch_size)
    missing = sorted(set(spec.names) - set(stats))
    if missing:
        raise ValueError(f"the features give no activations for permutations {missing}")
    a = {k: v.detach().cpu() for k, v in params_a.items()}
    b = {k: v.detach().cpu() for k, v in params_b.items()}
    perm = identity(spec, b)
    data_moment = input_hessian(spec, a, data.x)
    order = [name for name in stats if name in spec.perm_to_axes]
    for sweep in range(max_passes):
        ready: set[str] = set()
        left_out = changed = 0
        for first in order:
            if first in ready:
                continue  # paired with its heads group
            members = spec.moved_with(first)
            usable = ready if sweep == 0 else set(order)
            measured = [_distance(spec, name, a, b, perm, stats, usable, damping, data_moment) for name in members]
            group = spec.group_of(first)
            distances = [distance for distance, _ in measured]
            pairs = ([greedy_matching(distances[0])] if group is None
                     else greedy_head_matching(distances, group.head_size))
            for name, (distance, skipped), found in zip(members, measured, pairs, strict=True):
                changed += int(not torch.equal(found, perm[name]))
                left_out += skipped
                perm[name] = found
                ready.add(name)
                if progress is not None:
                    progress({"event": "match", "pass": sweep + 1, "name": name, "units": len(found),
                              "distance": float(distance[torch.arange(len(found)), found].sum())})
        if left_out == 0 or (sweep > 0 and changed == 0):
            break
    return perm
