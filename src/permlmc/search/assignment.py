"""The linear assignment every matching search solves: which unit of B goes where, maximising total similarity."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


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
