"""``compare-ensembles`` (App. C, Table 3): ensembles of a trained pair and of learnt lines."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from typing import Any

import torch

from permlmc.artifacts.checkpoints import load_permutation
from permlmc.cli.study import load_on, write_rows
from permlmc.cli.training import train_config
from permlmc.cli.verb import (
    Verb,
    data_option,
    method_path,
    optional_int,
    residual_options,
    rows_options,
    statistics_options,
)
from permlmc.data.dataset import load_dataset
from permlmc.data.subsets import curve_examples, statistics_batches
from permlmc.device import CPU
from permlmc.models import permutation_spec
from permlmc.studies.table3 import table3_rows
from permlmc.training.loop import TrainConfig
from permlmc.types import PathLike

log = logging.getLogger("permlmc")


def run_ensembles(
    model_a: PathLike, model_b: PathLike, permutations: Mapping[str, PathLike], data_path: PathLike,
    out: PathLike, *, line_config: TrainConfig, beta: float, line_method: str, seed: int,
    labels: Mapping[str, Any], test_examples: int | None = None, residual: str = "full",
    bn_batches: int = 10, bn_batch_size: int = 256, expect: str | None = None, device: torch.device = CPU,
) -> None:
    """App. C / Table 3 on one pair of trained networks: each endpoint, their output ensemble, their weight
    average after each search's permutation, a line learnt from scratch (subspace learning, SL) and one learnt
    from A and the permuted B (``line_method`` + SL); test metrics of every row."""
    permutations = dict(permutations)  # METHOD=PATH items on the command line
    if line_method not in permutations:
        raise ValueError(f"the matched line starts from the {line_method!r} permutation, which is not among the "
                         f"given ones {sorted(permutations)}: add it to ensembles.methods")
    arch, (a, b) = load_on([model_a, model_b], expect, device)
    spec = permutation_spec(arch, residual)
    data = load_dataset(data_path, device=device)
    test = curve_examples(data, "test", test_examples)
    loaded = {method: load_permutation(path, spec, b) for method, path in permutations.items()}
    rows = table3_rows(arch, a, b, loaded, spec=spec, line_method=line_method, line_config=line_config, beta=beta,
                       seed=seed, train=data.split("train"), test=test,
                       batches=statistics_batches(data, bn_batches, bn_batch_size), device=device, log=log.info)
    write_rows(out, rows, labels, line_training=line_config.to_dict(), beta=beta,
               permutations={k: str(v) for k, v in permutations.items()}, test_examples=len(test[1]))


def ensembles_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    p.add_argument("--permutations", type=method_path, nargs="+", required=True, metavar="METHOD=PATH",
                   help="B's permutation per search method; the first gives the endpoint rows")
    p.add_argument("--line-method", required=True, help="the method whose permutation starts the matched line")
    data_option(p)
    p.add_argument("--config", dest="line_config", metavar="JSON", type=train_config,
                   default=TrainConfig(), help="line training hyperparameters as a JSON object")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the endpoints' cosine-similarity penalty")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-examples", type=optional_int, default=None)
    statistics_options(p)
    residual_options(p)
    rows_options(p)


VERBS = {
    "compare-ensembles": Verb("Ensembles of a trained pair and of learnt lines (App. C, Table 3).",
                              ensembles_arguments, run_ensembles),
}
