"""``compare-all-pairs`` (App. E.3): the barrier of every pair of many networks before and after a search."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from permlmc.cli.study import checkpoint_arguments, load_on, study_inputs, write_rows
from permlmc.cli.verb import Verb
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU
from permlmc.models import permutation_spec
from permlmc.search import get_search
from permlmc.studies.all_pairs import all_pair_barriers
from permlmc.types import PathLike

log = logging.getLogger("permlmc")


def run_all_pairs(
    models: Sequence[PathLike], data_path: PathLike, out: PathLike, *, method: str, options: dict[str, Any],
    search_examples: int | None, barrier_examples: int | None, alphas: Sequence[float], seed: int,
    labels: Mapping[str, Any], residual: str = "full", expect: str | None = None, device: torch.device = CPU,
) -> None:
    """App. E.3: barrier of every pair of ``models`` (seeds 1..n in order) before and after ``method`` (searching
    on ``search_examples`` training examples), with the indirect barriers, on the training examples of the pairs'
    curves (``barrier_examples``)."""
    arch, params = load_on(models, expect, device)
    spec = permutation_spec(arch, residual)
    dataset = load_dataset(data_path, device=device)
    data, model, curve = study_inputs(method, arch, spec, dataset, search_examples, barrier_examples, seed, device)
    start = time.perf_counter()
    rows = all_pair_barriers(
        spec, model, dict(enumerate(params, start=1)), data, get_search(method), options,
        alphas=alphas, seed=seed, curve=curve, progress=log.info,
    )
    write_rows(out, rows, {**labels, "method": method}, models=[str(m) for m in models], options=options,
               examples=None if data is None else len(data.y), barrier_examples=len(curve[1]),
               wall_seconds=time.perf_counter() - start)


def all_pairs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", required=True, help="checkpoints, in seed order")
    checkpoint_arguments(p)
    p.add_argument("--out", required=True)


VERBS = {
    "compare-all-pairs": Verb("Barriers of every pair of many networks before/after a search (App. E.3).",
                              all_pairs_arguments, run_all_pairs),
}
