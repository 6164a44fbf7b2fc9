"""What the verbs of the studies that span many models per job share (``compare-all-pairs``, ``check-theorem``,
``search-group``, ``compare-ensembles``, named like their rules): loading a network's checkpoints, its search and
barrier inputs, one JSON file of table rows with provenance (gathered by ``tabulate-study``), and their arguments."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from permlmc.artifacts.checkpoints import load_checkpoints
from permlmc.artifacts.files import write_json
from permlmc.artifacts.provenance import provenance
from permlmc.cli.verb import (
    alphas_option,
    data_option,
    json_object,
    method_arguments,
    optional_int,
    residual_options,
    search_examples_option,
)
from permlmc.data.dataset import Dataset
from permlmc.data.subsets import curve_examples
from permlmc.device import to_device
from permlmc.models import Architecture, build_model
from permlmc.permutation import PermutationSpec
from permlmc.search import SearchData
from permlmc.search.inputs import search_data
from permlmc.types import PathLike, StateDict

Inputs = tuple[SearchData | None, nn.Module, tuple[Tensor, Tensor]]
"""A study's search data (None for weight-only searches), the networks' skeleton and the barrier examples."""


def load_on(
    paths: Sequence[PathLike], expect: str | None, device: torch.device,
) -> tuple[Architecture, list[StateDict]]:
    """A group of one network's checkpoints (:func:`permlmc.artifacts.checkpoints.load_checkpoints`) on ``device``."""
    arch, models = load_checkpoints(paths, expect)
    return arch, [to_device(m, device) for m in models]


def write_rows(out: PathLike, rows: list[dict[str, Any]], labels: Mapping[str, Any], **meta: Any) -> None:
    """``rows``, each with ``labels`` (its identity columns), and ``meta`` and provenance, as one JSON file."""
    write_json(out, {"rows": [{**labels, **row} for row in rows], **meta, "provenance": provenance()})


def study_inputs(method: str, arch: Architecture, spec: PermutationSpec, dataset: Dataset, search_examples: int | None,
                 barrier_examples: int | None, seed: int, device: torch.device) -> Inputs:
    """The search's data (None for weight-only searches), the networks' skeleton and the training examples the
    barriers are measured on (those of the pairs' curves)."""
    data = search_data(method, arch, spec, dataset, search_examples, seed, device)
    return data, build_model(arch).to(device), curve_examples(dataset, "train", barrier_examples)


def checkpoint_arguments(p: argparse.ArgumentParser) -> None:
    """The search of a study verb on checkpoints (method, options, seed, alphas), its data, search and barrier
    subsets, labels and residual mode."""
    method_arguments(p)
    alphas_option(p)
    data_option(p)
    search_examples_option(p)
    p.add_argument("--barrier-examples", type=optional_int, default=None, metavar="N",
                   help="training examples the barriers are measured on (those of the pairs' curves; none = all)")
    p.add_argument("--labels", type=json_object, default={}, help="identity columns recorded in the table")
    residual_options(p)


