"""Ensembles of networks in output space and in weight space (paper App. C, Table 3).

For members ``theta_1 .. theta_K`` (already permuted into alignment when a permutation is used):

- the output ensemble predicts ``p(x) = (1/K) sum_k softmax(f(theta_k, x))``; its loss is ``-log p(x)_y``.
  Permuting a member does not change its function, so this row is the same with or without alignment;
- the weight average is the single network ``(1/K) sum_k theta_k``. It is only as good as the members are
  linearly connected: the paper's conjecture is that, after the right permutation, the average of two SGD
  solutions sits inside one basin. With BatchNorm its running statistics are re-estimated on training batches
  (averaged statistics are not those of the averaged network; see :mod:`permlmc.interpolation.batchnorm`).

Pure functions of tensors: :func:`permlmc.studies.table3.table3_rows` builds Table 3 of one pair from them.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from permlmc.evaluation import Forward, Metrics, evaluate, wrong_count
from permlmc.interpolation.batchnorm import batchnorm_layers, reset_statistics
from permlmc.types import StateDict

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

