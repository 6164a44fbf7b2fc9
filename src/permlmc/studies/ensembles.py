"""Ensembles of networks in output space and in weight space (paper App. C, Table 3).

For members ``theta_1 .. theta_K`` (already permuted into alignment when a permutation is used):

- the output ensemble predicts ``p(x) = (1/K) sum_k softmax(f(theta_k, x))``; its loss is ``-log p(x)_y``.
  Permuting a member does not change its function, so this row is the same with or without alignment;
- the weight average is the single network ``(1/K) sum_k theta_k``. It is only as good as the members are
  linearly connected: the paper's conjecture is that, after the right permutation, the average of two SGD
  solutions sits inside one basin. With BatchNorm its running statistics are re-estimated on training batches
  (averaged statistics are not those of the averaged network; see :mod:`permlmc.interpolation.batchnorm`).

:func:`table3_rows` builds every row of Table 3 of one pair from them (endpoints, output ensemble, weight average
with no permutation and after each search, SL, and SL started from the matched pair).
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from permlmc.device import CPU
from permlmc.evaluation import Forward, Metrics, evaluate, functional_forward, wrong_count
from permlmc.interpolation.batchnorm import batchnorm_layers, reset_statistics
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.permutation import apply_permutation
from permlmc.training.line import train_line
from permlmc.training.loop import TrainConfig
from permlmc.types import Permutation, StateDict

OUTPUT_ENSEMBLE = "output ensemble"
WEIGHT_AVERAGE = "weight average"


def member_name(index: int) -> str:
    """``model A``, ``model B``, ... (``model 27`` onwards past Z): the row name of member ``index``."""
    letters = string.ascii_uppercase
    return f"model {letters[index] if index < len(letters) else index + 1}"


def _check_members(members: Sequence[StateDict]) -> None:
    if not members:
        raise ValueError("an ensemble needs at least one member")
    keys = set(members[0])
    for i, member in enumerate(members[1:], start=1):
        if set(member) != keys:
            raise ValueError(f"member {i} has state-dict keys {sorted(set(member) ^ keys)} that member 0 lacks or has")


def has_running_statistics(params: StateDict) -> bool:
    """Whether a state dict holds BatchNorm running statistics (then averaging alone is not enough)."""
    return any(key.endswith("running_mean") for key in params)


def weight_average(
    members: Sequence[StateDict], *, model: nn.Module | None = None, batches: Sequence[Tensor] = ()
) -> StateDict:
    """``(1/K) sum_k theta_k`` of every floating entry; integer buffers from the first member.

    For a network with BatchNorm, pass its ``model`` skeleton and training ``batches``: the average's running
    statistics are then re-estimated on them. Leaving them out for such a network raises, rather than return
    averaged statistics silently.
    """
    _check_members(members)
    average = {
        key: torch.stack([m[key] for m in members]).mean(0) if value.is_floating_point() else value.clone()
        for key, value in members[0].items()
    }
    if not has_running_statistics(average):
        return average
    if model is None or not batches or not batchnorm_layers(model):
        raise ValueError("the weight average of BatchNorm networks needs the model and training batches to "
                         "re-estimate its statistics on")
    return reset_statistics(model, average, batches)


@torch.no_grad()
def ensemble_probabilities(forward: Forward, members: Sequence[StateDict], x: Tensor) -> Tensor:
    """Mean of the members' softmax probabilities, shape (N, classes)."""
    _check_members(members)
    return torch.stack([forward(m, x).softmax(dim=1) for m in members]).mean(0)  # (K, N, classes) -> (N, classes)


@torch.no_grad()
def ensemble_metrics(
    forward: Forward, members: Sequence[StateDict], x: Tensor, y: Tensor, batch_size: int = 4096
) -> Metrics:
    """Loss ``-log p(x)_y`` (nats) and error of the output ensemble ``p``, in chunks of ``batch_size``."""
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        probs = ensemble_probabilities(forward, members, x[start : start + batch_size]).double()
        target = y[start : start + batch_size]
        # probabilities can underflow to 0 for a confidently wrong ensemble; clamp keeps the loss finite
        total_loss -= probs.gather(1, target[:, None]).clamp_min(torch.finfo(torch.float64).tiny).log().sum()
        wrong += wrong_count(probs, target)
    n = max(len(x), 1)
    return Metrics(loss=float(total_loss) / n, error=float(wrong) / n)


def ensemble_table(
    forward: Forward, members: Sequence[StateDict], x: Tensor, y: Tensor, *, average: StateDict | None = None
) -> dict[str, Metrics]:
    """Metrics of each member (``model A``, ``model B``, ...), the output ensemble and the weight average.

    ``average`` replaces the plain :func:`weight_average` of the members; BatchNorm networks must pass one
    (``weight_average(members, model=..., batches=...)``) since ``forward`` cannot re-estimate statistics.
    """
    _check_members(members)
    if average is None:
        average = weight_average(members)
    rows = {member_name(i): evaluate(forward, m, x, y) for i, m in enumerate(members)}
    rows[OUTPUT_ENSEMBLE] = ensemble_metrics(forward, members, x, y)
    rows[WEIGHT_AVERAGE] = evaluate(forward, average, x, y)
    return rows


def table3_rows(
    arch: Architecture, a: StateDict, b: StateDict, permutations: Mapping[str, Permutation], *,
    line_method: str, line_config: TrainConfig, beta: float, seed: int, train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor], batches: Sequence[Tensor], residual: str = "full",
    device: torch.device = CPU, log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Table 3 on one pair of trained networks ``a`` and ``b``: the endpoints and their output ensemble, their
    weight average after each of ``permutations`` (of B), a line learnt from scratch (``SL``) and one learnt from A
    and B permuted by ``permutations[line_method]`` (``<line_method> + SL``); rows ``{ensemble, member, test_loss,
    test_error, test_accuracy}`` on ``test``. Weight averages re-estimate BatchNorm statistics on ``batches``."""
    if line_method not in permutations:
        raise ValueError(f"the matched line starts from the {line_method!r} permutation, which is not among the "
                         f"given ones {sorted(permutations)}: add it to ensembles.methods")
    spec = permutation_spec(arch, residual)
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
