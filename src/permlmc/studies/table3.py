"""Table 3 (paper App. C) on one pair of trained networks: the endpoints, their output ensemble, their weight
average after each search's permutation, and lines learnt by subspace learning (Wortsman et al. 2021) from scratch
and from the matched pair; every row's test metrics (:mod:`permlmc.studies.ensembles`, :mod:`permlmc.training.line`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from permlmc.device import CPU
from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, build_model
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.studies.ensembles import OUTPUT_ENSEMBLE, WEIGHT_AVERAGE, ensemble_table, member_name, weight_average
from permlmc.training.line import train_line
from permlmc.training.loop import TrainConfig
from permlmc.types import Permutation, StateDict


def table3_rows(
    arch: Architecture, a: StateDict, b: StateDict, permutations: Mapping[str, Permutation], *,
    spec: PermutationSpec, line_method: str, line_config: TrainConfig, beta: float, seed: int,
    train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], batches: Sequence[Tensor], device: torch.device = CPU,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Table 3 on one pair of trained networks ``a`` and ``b``: the endpoints and their output ensemble, their
    weight average after each of ``permutations`` (of B, under ``spec``), a line learnt from scratch (``SL``) and
    one learnt from A and B permuted by ``permutations[line_method]`` (``<line_method> + SL``); rows ``{ensemble,
    member, test_loss, test_error, test_accuracy}`` on ``test``. Weight averages re-estimate BatchNorm statistics
    on ``batches``; the lines train on ``train``."""
    if line_method not in permutations:
        raise ValueError(f"the matched line starts from the {line_method!r} permutation, which is not among the "
                         f"given ones {sorted(permutations)}")
    model = build_model(arch).to(device)
    forward = functional_forward(model)

    def rows_of(members: list[StateDict], label: str) -> list[dict[str, Any]]:
        table = ensemble_table(forward, members, *test, average=weight_average(members, model=model, batches=batches))
        return [{"ensemble": label, "member": name, "test_loss": m.loss, "test_error": m.error,
                 "test_accuracy": 1 - m.error} for name, m in table.items()]

    rows: list[dict[str, Any]] = []
    for method, perm in permutations.items():  # the first method's rows hold the endpoints and output ensemble
        part = rows_of([a, apply_permutation(spec, perm, b)], f"trained pair, {method}")
        rows.extend(part if not rows else [r for r in part if r["member"] == WEIGHT_AVERAGE])
    matched = apply_permutation(spec, permutations[line_method], b)
    for label, init in (("SL", None), (f"{line_method} + SL", (a, matched))):
        start = time.perf_counter()
        line = train_line(arch, seed, line_config, train, test, init=init, beta=beta, device=device,
                          on_epoch=None if log is None else
                          lambda r: log(f"line epoch {r['epoch']} loss {r['train_loss']:.4f}"))
        if log is not None:
            log(f"{label}: {line.epochs} epochs in {time.perf_counter() - start:.1f} s")
        rows.extend(r for r in rows_of([line.theta_1, line.theta_2], label)
                    if r["member"] in (OUTPUT_ENSEMBLE, WEIGHT_AVERAGE, member_name(0), member_name(1)))
    return rows
