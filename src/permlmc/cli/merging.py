"""The merging study's verb, ``merge-models``: n trained networks of one architecture merged into one weight
average after MergeMany (Git Re-Basin Alg. 3) and after aligning every model to the first by weight matching, with
the merged network's train and test loss and error; and the cycle-consistency error of pairwise weight matching
among the first three. One JSON file of table rows with provenance, gathered by ``tabulate-study``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from permlmc import seeding
from permlmc.artifacts.checkpoints import load_checkpoint
from permlmc.artifacts.files import write_json
from permlmc.artifacts.provenance import provenance
from permlmc.cli.verb import Verb, json_object, optional_int, residual_options
from permlmc.data.dataset import load_dataset
from permlmc.data.subsets import curve_splits, statistics_batches
from permlmc.device import CPU, to_device
from permlmc.evaluation import evaluate, functional_forward
from permlmc.models import build_model, permutation_spec
from permlmc.permutation import apply_permutation, identity
from permlmc.search.merge_many import cycle_error, merge_many
from permlmc.search.weight_matching import search as weight_matching
from permlmc.studies.ensembles import weight_average
from permlmc.types import PathLike


def run_merge_models(
    models: Sequence[PathLike], data_path: PathLike, out: PathLike, *, seed: int, labels: Mapping[str, Any],
    train_examples: int | None = None, test_examples: int | None = None, residual: str = "full",
    bn_batches: int = 10, bn_batch_size: int = 256, expect: str | None = None, device: torch.device = CPU,
) -> None:
    """Rows ``{method, n, split, loss, error}`` of the merged network for ``merge_many`` and ``align_to_first``
    (and ``none``: the plain average), and one row ``{method: cycle, cycle_error}`` when three models or more."""
    arch, first, _ = load_checkpoint(models[0], expect_name=expect)
    params = [first, *(load_checkpoint(p, expect=arch)[1] for p in models[1:])]
    spec = permutation_spec(arch, residual)
    data = load_dataset(data_path, device=device)
    splits = curve_splits(data, train_examples, test_examples)
    model = build_model(arch).to(device)
    forward = functional_forward(model)
    batches = statistics_batches(data, bn_batches, bn_batch_size)
    generator = seeding.generator(seed, seeding.SEARCH)
    aligned = [identity(spec, params[0]),
               *(weight_matching(spec, params[0], p, generator=generator) for p in params[1:])]
    methods = {
        "none": [identity(spec, p) for p in params],
        "align_to_first": aligned,
        "merge_many": merge_many(spec, params, generator=generator),
    }
    rows: list[dict[str, Any]] = []
    for method, perms in methods.items():
        permuted = [to_device(apply_permutation(spec, q, p), device) for q, p in zip(perms, params, strict=True)]
        average = weight_average(permuted, model=model, batches=batches)
        for split, (x, y) in splits.items():
            metrics = evaluate(forward, average, x, y)
            rows.append({**labels, "n": len(params), "method": method, "split": split, "loss": metrics.loss,
                         "error": metrics.error})
    if len(params) >= 3:
        p_ab, p_bc, p_ac = (weight_matching(spec, x, y, generator=generator)
                            for x, y in ((params[0], params[1]), (params[1], params[2]), (params[0], params[2])))
        rows.append({**labels, "n": len(params), "method": "cycle", "cycle_error": cycle_error(p_ab, p_bc, p_ac)})
    write_json(out, {"rows": rows, "files": [str(m) for m in models], "seed": seed, "provenance": provenance()})


def merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", required=True, help="checkpoints of one architecture (n >= 2)")
    p.add_argument("--data", dest="data_path", metavar="DATA", required=True)
    p.add_argument("--seed", type=int, default=0, help="seed of the matching's random order")
    p.add_argument("--train-examples", type=optional_int, default=None)
    p.add_argument("--test-examples", type=optional_int, default=None)
    p.add_argument("--bn-batches", type=int, default=10)
    p.add_argument("--bn-batch-size", type=int, default=256)
    p.add_argument("--labels", type=json_object, default={})
    residual_options(p)
    p.add_argument("--out", required=True)


VERBS = {
    "merge-models": Verb("Merge n networks after MergeMany and after aligning all to the first (Git Re-Basin "
                         "Alg. 3); cycle consistency of pairwise alignments.", merge_arguments, run_merge_models),
}
