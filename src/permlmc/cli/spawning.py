"""Verbs of connectivity along training (Frankle et al., ICML 2020): ``compare-spawns`` (the barrier between two
children forked from one parent at a spawn point, against the spawn point) and ``compare-epochs`` (the barrier
between two independently trained seeds at chosen epochs); each before search and after weight matching. One JSON
file of table rows with provenance per job, gathered by ``tabulate-study``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch

from permlmc.artifacts.files import write_json
from permlmc.artifacts.provenance import provenance
from permlmc.cli.training import train_config
from permlmc.cli.verb import Verb, alphas_option, data_option, optional_int, rows_options
from permlmc.data.dataset import Dataset, load_dataset
from permlmc.data.subsets import curve_splits
from permlmc.device import CPU
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.permutation import PermutationSpec
from permlmc.studies.along_training import before_and_after_matching
from permlmc.training.loop import TrainConfig
from permlmc.training.spawn import snapshots, spawn
from permlmc.types import PathLike


class _Setup(NamedTuple):
    data: Dataset
    arch: Architecture
    spec: PermutationSpec
    model: torch.nn.Module
    splits: dict[str, Any]


def _setup(data_path: PathLike, model_name: str, depth: int, width: int, train_examples: int | None,
           test_examples: int | None, device: torch.device) -> _Setup:
    data = load_dataset(data_path, device=device)
    arch = Architecture(model_name, depth, width, data.input_shape, data.num_classes)
    return _Setup(data, arch, permutation_spec(arch), build_model(arch).to(device),
                  curve_splits(data, train_examples, test_examples))


def run_compare_spawns(
    data_path: PathLike, out: PathLike, *, model_name: str, depth: int, width: int, config: TrainConfig, seed: int,
    at: int, alphas: Sequence[float], labels: Mapping[str, Any], train_examples: int | None = None,
    test_examples: int | None = None, device: torch.device = CPU,
) -> None:
    """Children 1 and 2 of network ``seed`` spawned after ``at`` epochs, trained to the end; their barrier."""
    data, arch, spec, model, splits = _setup(data_path, model_name, depth, width, train_examples, test_examples, device)
    children = spawn(arch, seed, config, data.split("train"), data.split("test"), at=at, children=[1, 2],
                     device=device)
    found = before_and_after_matching(spec, model, children[1].state_dict, children[2].state_dict, splits, alphas,
                                      seed)
    rows = [{**labels, "spawn_epoch": at, **row} for row in found]
    write_json(out, {"rows": rows, "children": {c: {"epochs": r.epochs, "stopped_by": r.stopped_by,
                                                    "test_error": r.test.error} for c, r in children.items()},
                     "training": config.to_dict(), "provenance": provenance()})


def run_compare_epochs(
    data_path: PathLike, out: PathLike, *, model_name: str, depth: int, width: int, config: TrainConfig,
    seeds: Sequence[int], epochs: Sequence[int], alphas: Sequence[float], labels: Mapping[str, Any],
    train_examples: int | None = None, test_examples: int | None = None, device: torch.device = CPU,
) -> None:
    """Seeds ``seeds`` (two) trained independently, their barrier at each of ``epochs``."""
    data, arch, spec, model, splits = _setup(data_path, model_name, depth, width, train_examples, test_examples, device)
    a, b = (snapshots(arch, s, config, data.split("train"), epochs, device=device) for s in seeds)
    rows = [{**labels, "epoch": epoch, **row} for epoch in sorted(a)
            for row in before_and_after_matching(spec, model, a[epoch], b[epoch], splits, alphas, seeds[0])]
    write_json(out, {"rows": rows, "seeds": list(seeds), "training": config.to_dict(), "provenance": provenance()})


def _common(p: argparse.ArgumentParser) -> None:
    data_option(p)
    p.add_argument("--arch", dest="model_name", metavar="ARCH", required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--config", type=train_config, default=TrainConfig(), help="training protocol as JSON")
    alphas_option(p)
    p.add_argument("--train-examples", type=optional_int, default=None)
    p.add_argument("--test-examples", type=optional_int, default=None)
    rows_options(p)


def spawn_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--seed", type=int, default=1, help="the parent network")
    p.add_argument("--at", type=int, required=True, help="spawn point: epochs the parent trains before the fork")


def epoch_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--seeds", type=int, nargs=2, default=[1, 2])
    p.add_argument("--epochs", type=int, nargs="+", required=True, help="epochs at which the pair is compared")


VERBS = {
    "compare-spawns": Verb("Barrier between two children spawned from one parent after k epochs (Frankle et al. "
                           "2020), before and after weight matching.", spawn_arguments, run_compare_spawns),
    "compare-epochs": Verb("Barrier between two independently trained seeds at chosen epochs, before and after "
                           "weight matching.", epoch_arguments, run_compare_epochs),
}
