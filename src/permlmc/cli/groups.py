"""``search-group`` (§4.2): permutations of groups of n networks by a group search, and their average pairwise
barrier before and after."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from permlmc.barrier import require_midpoint
from permlmc.cli.study import checkpoint_arguments, load_on, study_inputs, write_rows
from permlmc.cli.verb import Verb
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU
from permlmc.models import permutation_spec
from permlmc.search.group import get_group_search
from permlmc.studies.groups import group_rows
from permlmc.types import PathLike

log = logging.getLogger("permlmc")


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
        arch, params = load_on(models, expect, device)
        spec = permutation_spec(arch, residual)
        if inputs is None:  # every group is of one network: one search subset
            inputs = study_inputs(pairwise if pairwise != method else "sa", arch, spec, dataset, search_examples,
                                  barrier_examples, seed, device)
        data, model, (x, y) = inputs
        rows = group_rows(spec, params, search, data=data, model=model, curve=(x, y), alphas=alphas, seed=seed,
                          options=options)
        write_rows(out, rows, {"method": method, **labels, "kind": kind, "models": len(models)}, options=options,
                   examples=None if data is None else len(data.y), barrier_examples=len(y),
                   files=[str(m) for m in models])
        log.info("%s: %d models, %s in %.1f s", kind, len(models), method, rows[-1]["search_seconds"])


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
    checkpoint_arguments(p)


VERBS = {
    "search-group": Verb("Permute groups of n networks with a group search (SA1/SA2, paper 4.2).",
                         group_arguments, run_group_search),
}
