"""The linear assignment every matching search solves: which unit of B goes where, maximising total similarity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from permlmc.permutation import PermutationSpec


def best_assignment(similarity: np.ndarray) -> np.ndarray:
    """``cols`` maximising ``sum_i similarity[i, cols[i]]`` for a square ``(n, n)`` matrix.

    The solver gets costs ``max_i similarity[i, k] - similarity[i, k]``: each column shifted by a constant, which
    changes every assignment's total by the same amount and so leaves the optimum where it was, while the solver
    starts from columns whose best entry is already zero. That costs nothing on unstructured matrices and saves
    much where columns differ in scale, as weight similarities do (docs/benchmarks.md, *Derived specs*).
    """
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"an assignment needs a square matrix, got shape {similarity.shape}")
    _, cols = linear_sum_assignment(similarity.max(axis=0, keepdims=True) - similarity)
    return cols


def best_head_assignment(similarities: Sequence[np.ndarray], block: int) -> list[np.ndarray]:
    """``cols`` per member maximising the summed ``sum_i similarity_m[i, cols_m[i]]`` over assignments that move
    whole heads of ``block`` units, every member's heads alike (a :class:`~permlmc.axes.Heads` group).

    Exact in two levels: the best a member can do sending head ``b`` of B to head ``a`` of A is the inner
    assignment on the ``(block, block)`` block of its matrix; the head order is then the outer assignment on the
    ``(heads, heads)`` sums of those values over members.
    """
    n = similarities[0].shape[0]
    if block < 1 or n % block or any(s.shape != (n, n) for s in similarities):
        raise ValueError(f"head assignment needs square matrices of one size, a multiple of {block}; got "
                         f"{[s.shape for s in similarities]}")
    heads, rows = n // block, np.arange(block)
    value = np.zeros((heads, heads))
    inner = np.zeros((len(similarities), heads, heads, block), dtype=np.int64)
    for m, similarity in enumerate(similarities):
        blocks = similarity.reshape(heads, block, heads, block).transpose(0, 2, 1, 3)  # (a, b, i, k)
        for a in range(heads):
            for b in range(heads):
                inner[m, a, b] = best_assignment(blocks[a, b])
                value[a, b] += blocks[a, b][rows, inner[m, a, b]].sum()
    order = best_assignment(value)
    return [(order[:, None] * block + inner[m, np.arange(heads), order]).reshape(-1) for m in range(len(similarities))]


def best_values(spec: PermutationSpec, names: tuple[str, ...], similarities: list[np.ndarray]) -> list[np.ndarray]:
    """The best assignment of each of ``names`` (moved together, :meth:`PermutationSpec.moved_with`: a heads group or
    one permutation) for its matrix."""
    group = spec.group_of(names[0])
    if group is None:
        return [best_assignment(similarities[0])]
    return best_head_assignment(similarities, group.head_size)
