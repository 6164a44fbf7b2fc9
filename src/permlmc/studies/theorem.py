"""Theorem 3.1 at random initialisation: for ``f(x) = v^T relu(U x)`` with ``h`` hidden units, entries of
``U`` uniform in ``[-1/sqrt(d), 1/sqrt(d)]`` and of ``v`` uniform in ``[-1/sqrt(h), 1/sqrt(h)]``, and inputs with
``||x|| = sqrt(d)``, some permutation of the second network makes

    sup_alpha | f_{alpha theta + (1 - alpha) pi(theta')}(x) - alpha f_theta(x) - (1 - alpha) f_theta'(x) |

of order ``h^(-1/(2d+4))`` (up to log factors). This module measures that gap before and after a permutation
search, for several ``h`` and ``d``, so it can be plotted against the rate on log-log axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from permlmc.models.entries import dense
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.search import Search
from permlmc.types import StateDict

SPEC = PermutationSpec({**dense("hidden", None, "hidden", bias=False), **dense("head", "hidden", None, bias=False)})
"""The theorem's network as a state dict: ``hidden.weight`` = U ``(h, d)``, ``head.weight`` = v^T ``(1, h)``."""


def random_network(width: int, input_dim: int, generator: torch.Generator) -> StateDict:
    """U and v drawn as in the theorem (float64: the gaps measured reach 1e-3 at large h)."""
    u = (torch.rand(width, input_dim, generator=generator, dtype=torch.float64) * 2 - 1) / input_dim**0.5
    v = (torch.rand(1, width, generator=generator, dtype=torch.float64) * 2 - 1) / width**0.5
    return {"hidden.weight": u, "head.weight": v}


def sphere_inputs(n: int, input_dim: int, generator: torch.Generator) -> Tensor:
    """``n`` inputs uniform on the sphere of radius ``sqrt(d)``, shape (n, d)."""
    x = torch.randn(n, input_dim, generator=generator, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True) * input_dim**0.5


def output(params: StateDict, x: Tensor) -> Tensor:
    """f(x) for every row of x: shape (n,)."""
    return (torch.relu(x @ params["hidden.weight"].T) @ params["head.weight"].T).squeeze(1)


def interpolation_gap(a: StateDict, b: StateDict, x: Tensor, alphas: Sequence[float]) -> Tensor:
    """Per input, ``sup_alpha |f_{(1-alpha) a + alpha b}(x) - (1-alpha) f_a(x) - alpha f_b(x)|``: shape (n,)."""
    fa, fb = output(a, x), output(b, x)
    gaps = []
    for alpha in alphas:
        mixed = {k: torch.lerp(a[k], b[k], float(alpha)) for k in a}
        gaps.append((output(mixed, x) - (1 - alpha) * fa - alpha * fb).abs())
    return torch.stack(gaps).amax(dim=0)


def measure_gaps(
    widths: Sequence[int], input_dims: Sequence[int], draws: int, inputs: int, search: Search,
    *, alphas: Sequence[float], seed: int, options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per (d, h, draw): the mean over inputs of the gap before and after ``search`` aligns the second
    network to the first (``search`` sees only the weights: the theorem's permutation does not look at x)."""
    rows = []
    for d in input_dims:
        for h in widths:
            for draw in range(draws):
                generator = torch.Generator().manual_seed(seed * 1_000_003 + d * 10_007 + h * 101 + draw)
                first, second = random_network(h, d, generator), random_network(h, d, generator)
                x = sphere_inputs(inputs, d, generator)
                perm = search(SPEC, first, second, generator=generator, **(options or {}))
                aligned = apply_permutation(SPEC, perm, second)
                rows.append({
                    "input_dim": d, "width": h, "draw": draw,
                    "gap_before": float(interpolation_gap(first, second, x, alphas).mean()),
                    "gap_after": float(interpolation_gap(first, aligned, x, alphas).mean()),
                    "rate": h ** (-1.0 / (2 * d + 4)),
                })
    return rows
