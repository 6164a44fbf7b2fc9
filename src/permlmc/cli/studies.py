"""Verbs of the studies that span many models per job, named like their rules: ``compare-all-pairs``,
``check-theorem``, ``search-group`` and ``compare-ensembles``. Each reads checkpoints, calls :mod:`permlmc.studies`
or the searches, and writes one JSON file of table rows with provenance (gathered by ``tabulate-study``)."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from permlmc.artifacts.checkpoints import load_checkpoints, load_permutation
from permlmc.artifacts.files import write_json
from permlmc.artifacts.provenance import provenance
from permlmc.barrier import require_midpoint
from permlmc.cli.training import train_config
from permlmc.cli.verb import (
    Verb,
    alphas,
    json_object,
    method_arguments,
    method_path,
    optional_int,
    residual_options,
    search_examples_option,
    statistics_options,
)
from permlmc.data.dataset import Dataset, load_dataset
from permlmc.data.subsets import curve_examples, statistics_batches
from permlmc.device import CPU, to_device
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.search import REQUIRES, SearchData, get_search
from permlmc.search.group import get_group_search
from permlmc.search.inputs import search_data
from permlmc.studies.all_pairs import all_pair_barriers
from permlmc.studies.groups import group_rows
from permlmc.studies.table3 import table3_rows
from permlmc.studies.theorem import measure_gaps
from permlmc.training.loop import TrainConfig
from permlmc.types import PathLike, StateDict

log = logging.getLogger("permlmc")
Inputs = tuple[SearchData | None, nn.Module, tuple[Tensor, Tensor]]
"""A study's search data (None for weight-only searches), the networks' skeleton and the barrier examples."""


def _load(paths: Sequence[PathLike], expect: str | None, device: torch.device) -> tuple[Architecture, list[StateDict]]:
    arch, models = load_checkpoints(paths, expect)
    return arch, [to_device(m, device) for m in models]


def _write_rows(out: PathLike, rows: list[dict[str, Any]], labels: Mapping[str, Any], **meta: Any) -> None:
    write_json(out, {"rows": [{**labels, **row} for row in rows], **meta, "provenance": provenance()})


def _inputs(method: str, arch: Architecture, spec: Any, dataset: Dataset, search_examples: int | None,
            barrier_examples: int | None, seed: int, device: torch.device) -> Inputs:
    """The search's data (None for weight-only searches), the networks' skeleton and the training examples the
    barriers are measured on (those of the pairs' curves)."""
    data = search_data(method, arch, spec, dataset, search_examples, seed, device)
    return data, build_model(arch).to(device), curve_examples(dataset, "train", barrier_examples)


def run_all_pairs(
    models: Sequence[PathLike], data_path: PathLike, out: PathLike, *, method: str, options: dict[str, Any],
    search_examples: int | None, barrier_examples: int | None, alphas: Sequence[float], seed: int,
    labels: Mapping[str, Any], residual: str = "full", expect: str | None = None, device: torch.device = CPU,
) -> None:
    """App. E.3: barrier of every pair of ``models`` (seeds 1..n in order) before and after ``method`` (searching
    on ``search_examples`` training examples), with the indirect barriers, on the training examples of the pairs'
    curves (``barrier_examples``)."""
    arch, params = _load(models, expect, device)
    spec = permutation_spec(arch, residual)
    dataset = load_dataset(data_path, device=device)
    data, model, curve = _inputs(method, arch, spec, dataset, search_examples, barrier_examples, seed, device)
    start = time.perf_counter()
    rows = all_pair_barriers(
        spec, model, dict(enumerate(params, start=1)), data, get_search(method), options,
        alphas=alphas, seed=seed, curve=curve, progress=log.info,
    )
    _write_rows(out, rows, {**labels, "method": method}, models=[str(m) for m in models], options=options,
                examples=None if data is None else len(data.y), barrier_examples=len(curve[1]),
                wall_seconds=time.perf_counter() - start)


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
    _write_rows(out, rows, {"method": method}, options=dict(options), inputs=inputs, alphas=list(alphas))


def run_group_search(
    groups: Sequence[tuple[str, str, list[str]]], data_path: PathLike, *, method: str, options: dict[str, Any],
    search_examples: int | None, barrier_examples: int | None, alphas: Sequence[float], seed: int,
    labels: Mapping[str, Any], residual: str = "full", expect: str | None = None, device: torch.device = CPU,
) -> None:
    """§4.2: for each ``(kind, out, checkpoints)`` of ``groups`` (one network's trained seeds, its permuted
    copies), permutations of the n models by a group search (``sa1``, ``sa2`` or ``pairwise:<method>``, on
    ``search_examples`` training examples) and the average pairwise barrier before and after, as the paper reports for
    every SA version, on the training examples of the pairs' curves (``barrier_examples``, so that group and pair
    barriers are measured alike); one file per group. Each group's search starts from the same seeded stream, as
    if run alone."""
    require_midpoint(alphas)
    pairwise = method.removeprefix("pairwise:")
    search = get_group_search(method)
    dataset = load_dataset(data_path, device=device)
    inputs = None
    for kind, out, models in groups:
        arch, params = _load(models, expect, device)
        spec = permutation_spec(arch, residual)
        if inputs is None:  # every group is of one network: one search subset
            inputs = _inputs(pairwise if pairwise != method else "sa", arch, spec, dataset, search_examples,
                             barrier_examples, seed, device)
        data, model, (x, y) = inputs
        rows = group_rows(spec, params, search, data=data, model=model, curve=(x, y), alphas=alphas, seed=seed,
                          options=options)
        _write_rows(out, rows, {"method": method, **labels, "kind": kind, "models": len(models)}, options=options,
                    examples=None if data is None else len(data.y), barrier_examples=len(y),
                    files=[str(m) for m in models])
        log.info("%s: %d models, %s in %.1f s", kind, len(models), method, rows[-1]["search_seconds"])


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
    arch, (a, b) = _load([model_a, model_b], expect, device)
    spec = permutation_spec(arch, residual)
    data = load_dataset(data_path, device=device)
    test = curve_examples(data, "test", test_examples)
    loaded = {method: load_permutation(path, spec, b) for method, path in permutations.items()}
    rows = table3_rows(arch, a, b, loaded, spec=spec, line_method=line_method, line_config=line_config, beta=beta,
                       seed=seed, train=data.split("train"), test=test,
                       batches=statistics_batches(data, bn_batches, bn_batch_size), device=device, log=log.info)
    _write_rows(out, rows, labels, line_training=line_config.to_dict(), beta=beta,
                permutations={k: str(v) for k, v in permutations.items()}, test_examples=len(test[1]))


def _search_arguments(p: argparse.ArgumentParser) -> None:
    method_arguments(p)
    p.add_argument("--alphas", type=alphas, default=alphas("11"), metavar="N", help="points along the path")


def _checkpoint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", dest="data_path", metavar="DATA", required=True)
    search_examples_option(p)
    p.add_argument("--barrier-examples", type=optional_int, default=None, metavar="N",
                   help="training examples the barriers are measured on (those of the pairs' curves; none = all)")
    p.add_argument("--labels", type=json_object, default={}, help="identity columns recorded in the table")
    residual_options(p)


def study_arguments(p: argparse.ArgumentParser, *, models: bool = True) -> None:
    _search_arguments(p)
    if models:
        p.add_argument("--models", nargs="+", required=True, help="checkpoints, in seed/copy order")
        _checkpoint_arguments(p)
    p.add_argument("--out", required=True)


class GroupAction(argparse.Action):
    """``--group KIND OUT MODEL MODEL [MODEL ...]``, repeatable: one group of checkpoints and its output file."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if len(values) < 4:
            raise argparse.ArgumentError(self, f"expected KIND OUT and at least two checkpoints, got {values}")
        kind, out, *models = values
        groups = list(getattr(namespace, self.dest) or [])  # a copy: the default list is shared between parses
        setattr(namespace, self.dest, [*groups, (kind, out, models)])


def group_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", dest="groups", nargs="+", action=GroupAction, default=None, required=True,
                   metavar="KIND OUT MODEL", help="a kind (recorded in the rows), its output file and its "
                   "checkpoints in seed/copy order; repeat for each group")
    _search_arguments(p)
    _checkpoint_arguments(p)


def theorem_arguments(p: argparse.ArgumentParser) -> None:
    study_arguments(p, models=False)
    p.add_argument("--widths", type=int, nargs="+", required=True)
    p.add_argument("--input-dims", type=int, nargs="+", required=True)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--inputs", type=int, default=1000, help="inputs on the sphere of radius sqrt(d)")


def ensembles_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    p.add_argument("--permutations", type=method_path, nargs="+", required=True, metavar="METHOD=PATH",
                   help="B's permutation per search method; the first gives the endpoint rows")
    p.add_argument("--line-method", required=True, help="the method whose permutation starts the matched line")
    p.add_argument("--data", dest="data_path", metavar="DATA", required=True)
    p.add_argument("--config", dest="line_config", metavar="JSON", type=train_config,
                   default=TrainConfig(), help="line training hyperparameters as a JSON object")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the endpoints' cosine-similarity penalty")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-examples", type=optional_int, default=None)
    statistics_options(p)
    p.add_argument("--labels", type=json_object, default={})
    residual_options(p)
    p.add_argument("--out", required=True)


VERBS = {
    "compare-all-pairs": Verb("Barriers of every pair of many networks before/after a search (App. E.3).",
                              study_arguments, run_all_pairs),
    "search-group": Verb("Permute groups of n networks with a group search (SA1/SA2, paper 4.2).",
                         group_arguments, run_group_search),
    "check-theorem": Verb("Theorem 3.1 at random initialisation: interpolation gap vs width.", theorem_arguments,
                          run_theorem, device=False),
    "compare-ensembles": Verb("Ensembles of a trained pair and of learnt lines (App. C, Table 3).",
                              ensembles_arguments, run_ensembles),
}
