"""Merging n networks into one (Git Re-Basin, Alg. 3): the weight average of the n models as trained (``none``),
after aligning every model to the first by weight matching (``align_to_first``) and after MergeMany
(``merge_many``), each evaluated as a network; and the cycle-consistency error of pairwise weight matching among
the first three."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from permlmc import seeding
from permlmc.device import to_device
from permlmc.evaluation import evaluate, functional_forward
from permlmc.permutation import PermutationSpec, apply_permutation, identity
from permlmc.search import get_search
from permlmc.search.merge_many import cycle_error, merge_many
from permlmc.studies.ensembles import weight_average
from permlmc.types import Permutation, StateDict

METHODS = ("none", "align_to_first", "merge_many")
"""The merged networks' rows, in order."""


def merging_rows(
    spec: PermutationSpec, params: Sequence[StateDict], *, model: nn.Module,
    splits: Mapping[str, tuple[Tensor, Tensor]], batches: Sequence[Tensor], seed: int, device: torch.device,
) -> list[dict[str, Any]]:
    """Rows ``{n, method, split, loss, error}`` of the merged network of each of :data:`METHODS` (BatchNorm
    statistics re-estimated on ``batches`` where the network has them), and one row ``{n, method: cycle,
    cycle_error}`` with three models or more. Every matching draws from one search stream of ``seed``, in the
    order align-to-first, MergeMany, the cycle."""
    generator = seeding.generator(seed, seeding.SEARCH)
    match = get_search("weight_matching")
    aligned = [identity(spec, params[0]), *(match(spec, params[0], p, generator=generator) for p in params[1:])]
    methods: dict[str, list[Permutation]] = {
        "none": [identity(spec, p) for p in params],
        "align_to_first": aligned,
        "merge_many": merge_many(spec, params, generator=generator),
    }
    forward = functional_forward(model)
    rows: list[dict[str, Any]] = []
    for method in METHODS:
        permuted = [to_device(apply_permutation(spec, q, p), device)
                    for q, p in zip(methods[method], params, strict=True)]
        average = weight_average(permuted, model=model, batches=batches)
        for split, (x, y) in splits.items():
            metrics = evaluate(forward, average, x, y)
            rows.append({"n": len(params), "method": method, "split": split, "loss": metrics.loss,
                         "error": metrics.error})
    if len(params) >= 3:
        p_ab, p_bc, p_ac = (match(spec, x, y, generator=generator)
                            for x, y in ((params[0], params[1]), (params[1], params[2]), (params[0], params[2])))
        rows.append({"n": len(params), "method": "cycle", "cycle_error": cycle_error(p_ab, p_bc, p_ac)})
    return rows
