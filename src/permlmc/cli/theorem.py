"""``check-theorem``: Theorem 3.1 at random initialisation, the interpolation gap against width."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from permlmc.cli.study import write_rows
from permlmc.cli.verb import Verb, alphas_option, method_arguments
from permlmc.search import REQUIRES, get_search
from permlmc.studies.theorem import measure_gaps
from permlmc.types import PathLike


def run_theorem(
    out: PathLike, *, widths: Sequence[int], input_dims: Sequence[int], draws: int, inputs: int, method: str,
    options: Mapping[str, Any], alphas: Sequence[float], seed: int,
) -> None:
    """Theorem 3.1 at random initialisation (see :mod:`permlmc.studies.theorem`); ``method`` must work from the
    weights alone, as the theorem's permutation does (``none`` or ``weight_matching``)."""
    if REQUIRES.get(method, ()):
        raise ValueError(f"theorem.method {method!r} needs data; the theorem's permutation uses the weights only: "
                         "use weight_matching (or none)")
    rows = measure_gaps(widths, input_dims, draws, inputs, get_search(method), alphas=alphas, seed=seed,
                        options=options)
    write_rows(out, rows, {"method": method}, options=dict(options), inputs=inputs, alphas=list(alphas))


def theorem_arguments(p: argparse.ArgumentParser) -> None:
    method_arguments(p)
    alphas_option(p)
    p.add_argument("--out", required=True)
    p.add_argument("--widths", type=int, nargs="+", required=True)
    p.add_argument("--input-dims", type=int, nargs="+", required=True)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--inputs", type=int, default=1000, help="inputs on the sphere of radius sqrt(d)")


VERBS = {
    "check-theorem": Verb("Theorem 3.1 at random initialisation: interpolation gap vs width.", theorem_arguments,
                          run_theorem, device=False),
}
