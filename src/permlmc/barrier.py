"""The loss barrier of Entezari et al. (2022), Eq. 1, computed from a stored interpolation curve.

    B(A, B) = sup_alpha  L((1 - alpha) theta_A + alpha theta_B) - [(1 - alpha) L(theta_A) + alpha L(theta_B)]

The curve is always kept, so both the supremum over the alpha grid and the midpoint variant (alpha = 1/2,
which the paper's plots report) can be recomputed from it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np

BN_MODES = ("interpolate", "reset", "repair")
"""How BatchNorm statistics are treated along the path (``permlmc.interpolation.path``): interpolated with the weights
(the paper's behaviour), re-estimated for each interpolated network, or rescaled to the endpoints' (REPAIR)."""


def _excess(alphas: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(alphas, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if a.shape != v.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("alphas and values must be 1-D sequences of equal length >= 2")
    order = np.argsort(a)
    a, v = a[order], v[order]
    if not (np.isclose(a[0], 0.0) and np.isclose(a[-1], 1.0)):
        raise ValueError(f"the alpha grid must include both endpoints 0 and 1, got {a[0]}..{a[-1]}")
    linear = (1.0 - a) * v[0] + a * v[-1]
    return a, v - linear


def barrier(alphas: Sequence[float], values: Sequence[float]) -> float:
    """Eq. 1: the largest excess of the curve over the straight line between its endpoints (>= 0)."""
    _, excess = _excess(alphas, values)
    return float(excess.max())


def require_midpoint(alphas: Sequence[float]) -> None:
    """Raise unless the grid holds alpha = 1/2, where the paper reads its barrier."""
    if not np.isclose(np.asarray(alphas, dtype=float), 0.5).any():
        raise ValueError(f"the alpha grid {list(alphas)} has no point at 1/2; use an odd number of evenly spaced "
                         "alphas")


def midpoint_barrier(alphas: Sequence[float], values: Sequence[float]) -> float:
    """Eq. 1 evaluated at alpha = 1/2 only (the grid must contain 1/2)."""
    require_midpoint(alphas)
    a, excess = _excess(alphas, values)
    return float(excess[np.flatnonzero(np.isclose(a, 0.5))[0]])


Key = TypeVar("Key", bound=Hashable)


def curve_barriers(points: Iterable[tuple[Key, float, float]]) -> dict[Key, dict[str, float]]:
    """``{key: {"sup": barrier, "mid": midpoint_barrier}}`` of every curve in ``points`` (key, alpha, value),
    each curve's points in the order given."""
    curves: dict[Key, tuple[list[float], list[float]]] = {}
    for key, alpha, value in points:
        alphas, values = curves.setdefault(key, ([], []))
        alphas.append(alpha)
        values.append(value)
    return {key: {"sup": barrier(a, v), "mid": midpoint_barrier(a, v)} for key, (a, v) in curves.items()}
