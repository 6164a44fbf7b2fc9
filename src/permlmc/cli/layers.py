"""The layer-wise study's verb, ``compare-layers`` (Adilova et al. 2024): one pair of one network, B taken after
each search's permutation, every group of parameters interpolated on its own (:mod:`permlmc.interpolation.layerwise`);
one JSON file of table rows (layer, split, metric, barrier) with provenance, gathered by ``tabulate-study``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from permlmc.artifacts.checkpoints import load_checkpoint, load_permutation
from permlmc.artifacts.files import write_json
from permlmc.artifacts.provenance import provenance
from permlmc.cli.verb import (
    Verb,
    alphas_option,
    data_option,
    method_path,
    optional_int,
    residual_options,
    rows_options,
)
from permlmc.data.dataset import load_dataset
from permlmc.data.subsets import curve_splits
from permlmc.device import CPU, to_device
from permlmc.interpolation.layerwise import layer_groups, layerwise_barriers, layerwise_curves
from permlmc.models import build_model, permutation_spec
from permlmc.permutation import apply_permutation
from permlmc.types import PathLike


def run_compare_layers(
    model_a: PathLike, model_b: PathLike, permutations: Sequence[tuple[str, PathLike]], data_path: PathLike,
    out: PathLike, *, alphas: Sequence[float], train_examples: int | None, test_examples: int | None,
    group_depth: int | None, labels: Mapping[str, Any], residual: str = "full", expect: str | None = None,
    device: torch.device = CPU,
) -> None:
    """Per-layer barriers of one pair after each search's permutation of B (``permutations``: METHOD=PATH)."""
    arch, a, _ = load_checkpoint(model_a, expect_name=expect)
    _, b, _ = load_checkpoint(model_b, expect=arch)
    a, b = to_device(a, device), to_device(b, device)
    spec = permutation_spec(arch, residual)
    model = build_model(arch).to(device)
    splits = curve_splits(load_dataset(data_path, device=device), train_examples, test_examples)
    groups = layer_groups({k: a[k] for k in model.state_dict()}, group_depth)  # the model's order, not the file's
    rows: list[dict[str, Any]] = []
    for method, path in permutations:
        b_perm = apply_permutation(spec, load_permutation(path, spec, b), b)
        found = layerwise_barriers(layerwise_curves(model, a, b_perm, groups, alphas, splits))
        order = {name: i for i, name in enumerate(groups)}
        rows.extend({**labels, "method": method, "position": order[str(r["layer"])], **r} for r in found)
    write_json(out, {"rows": rows, "groups": groups, "group_depth": group_depth, "alphas": list(alphas),
                     "evaluated_on": {s: len(xy[1]) for s, xy in splits.items()},
                     "files": [str(model_a), str(model_b), *(str(p) for _, p in permutations)],
                     "provenance": provenance()})


def layers_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    p.add_argument("--permutations", type=method_path, nargs="+", required=True, metavar="METHOD=PATH",
                   help="B's permutation per search method (none: the identity's file)")
    data_option(p)
    alphas_option(p, "points along each curve")
    p.add_argument("--train-examples", type=optional_int, default=None)
    p.add_argument("--test-examples", type=optional_int, default=None)
    p.add_argument("--group-depth", type=optional_int, default=None,
                   help="leading name components that make a group (default: one group per module)")
    residual_options(p)
    rows_options(p)


VERBS = {
    "compare-layers": Verb("Barriers of one layer (group of parameters) at a time, after each search (Adilova "
                           "et al. 2024).", layers_arguments, run_compare_layers),
}
