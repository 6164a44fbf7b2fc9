"""The merging study's verb, ``merge-models``: n trained networks of one architecture merged into one weight
average after MergeMany (Git Re-Basin Alg. 3) and after aligning every model to the first by weight matching, with
the merged network's train and test loss and error; and the cycle-consistency error of pairwise weight matching
among the first three. One JSON file of table rows with provenance, gathered by ``tabulate-study``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from permlmc.artifacts.checkpoints import load_checkpoints
from permlmc.artifacts.files import write_json
from permlmc.artifacts.provenance import provenance
from permlmc.cli.verb import (
    Verb,
    data_option,
    optional_int,
    residual_options,
    rows_options,
    statistics_options,
)
from permlmc.data.dataset import load_dataset
from permlmc.data.subsets import curve_splits, statistics_batches
from permlmc.device import CPU
from permlmc.models import build_model, permutation_spec
from permlmc.studies.merging import merging_rows
from permlmc.types import PathLike


def run_merge_models(
    models: Sequence[PathLike], data_path: PathLike, out: PathLike, *, seed: int, labels: Mapping[str, Any],
    train_examples: int | None = None, test_examples: int | None = None, residual: str = "full",
    bn_batches: int = 10, bn_batch_size: int = 256, expect: str | None = None, device: torch.device = CPU,
) -> None:
    """Rows ``{method, n, split, loss, error}`` of the merged network for ``merge_many`` and ``align_to_first``
    (and ``none``: the plain average), and one row ``{method: cycle, cycle_error}`` when three models or more."""
    arch, params = load_checkpoints(models, expect)
    data = load_dataset(data_path, device=device)
    found = merging_rows(permutation_spec(arch, residual), params, model=build_model(arch).to(device),
                         splits=curve_splits(data, train_examples, test_examples),
                         batches=statistics_batches(data, bn_batches, bn_batch_size), seed=seed, device=device)
    rows = [{**labels, **row} for row in found]
    write_json(out, {"rows": rows, "files": [str(m) for m in models], "seed": seed, "provenance": provenance()})


def merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", required=True, help="checkpoints of one architecture (n >= 2)")
    data_option(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the matching's random order")
    p.add_argument("--train-examples", type=optional_int, default=None)
    p.add_argument("--test-examples", type=optional_int, default=None)
    statistics_options(p)
    residual_options(p)
    rows_options(p)


VERBS = {
    "merge-models": Verb("Merge n networks after MergeMany and after aligning all to the first (Git Re-Basin "
                         "Alg. 3); cycle consistency of pairwise alignments.", merge_arguments, run_merge_models),
}
