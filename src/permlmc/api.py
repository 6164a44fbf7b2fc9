"""The library on your own ``nn.Module``s: derive and verify the permutation symmetry, align, measure the barrier,
merge. Every function takes modules (and DataLoaders of ``(inputs, labels)`` batches) and leaves them unchanged::

    from permlmc import api
    aligned = api.align(model_a, model_b, example, method="weight_matching")   # B permuted into A's basin
    curve = api.barrier(model_a, aligned.model, loader, bn_mode="reset")        # Eq. 1 along the linear path
    merged = api.merge([model_a, model_b, model_c], example, batches=loader)    # MergeMany, then the average

The spec is derived from the traced network (:mod:`permlmc.tracing`) and checked on it before any search uses it:
a spec that changes the network's function raises :class:`~permlmc.tracing.verify.SpecMismatch`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from permlmc.barrier import curve_barriers
from permlmc.evaluation import functional_forward
from permlmc.interpolation.path import interpolation_curve
from permlmc.interpolation.setup import alpha_grid
from permlmc.permutation import PermutationSpec, apply_permutation
from permlmc.search import REQUIRES, SearchData, get_search
from permlmc.search.features import unit_features
from permlmc.search.merge_many import merge_many
from permlmc.studies.ensembles import weight_average
from permlmc.tracing import Derivation, TraceOptions, derive_spec
from permlmc.tracing.verify import SpecReport, require_verified, verify_spec
from permlmc.types import Permutation

Batches = Iterable[tuple[Tensor, Tensor]] | Iterable[Sequence[Tensor]]
"""A DataLoader (or any iterable) of ``(inputs, labels)`` batches."""


@dataclass(frozen=True)
class VerifiedSpec:
    """A derived spec that passed verification, with the report (per permutation: units, deviation, share of
    parameters; axes left in place and why)."""

    spec: PermutationSpec
    report: SpecReport
    derivation: Derivation


Example = Tensor | tuple[Tensor, ...]
"""One input batch of the network (or a tuple of its inputs): what the spec is traced and verified on."""


def spec_of(model: nn.Module, example: Example, options: TraceOptions | None = None) -> VerifiedSpec:
    """Derive ``model``'s permutation spec from ``example`` and verify it (module doc)."""
    derivation = derive_spec(model, example, options)
    report = verify_spec(model, derivation.spec, example, fixed=derivation.fixed)
    require_verified(report, type(model).__name__)
    return VerifiedSpec(derivation.spec, report, derivation)


def take(batches: Batches, examples: int | None) -> tuple[Tensor, Tensor]:
    """The first ``examples`` inputs and labels of ``batches`` (all of them for None), concatenated."""
    xs, ys, count = [], [], 0
    for batch in batches:
        x, y = batch[0], batch[1]
        xs.append(x)
        ys.append(y)
        count += len(x)
        if examples is not None and count >= examples:
            break
    if not xs:
        raise ValueError("the data loader gave no batches")
    return torch.cat(xs)[:examples], torch.cat(ys)[:examples]


def _state(model: nn.Module) -> dict[str, Tensor]:
    return {key: value.detach() for key, value in model.state_dict().items()}


def _permuted(model: nn.Module, spec: PermutationSpec, perm: Permutation) -> nn.Module:
    out = copy.deepcopy(model)
    out.load_state_dict(apply_permutation(spec, perm, _state(model)))
    return out


@dataclass(frozen=True)
class Alignment:
    """``model``: B permuted by ``permutation`` (the same function as B, its units in A's order)."""

    model: nn.Module
    permutation: Permutation
    spec: PermutationSpec
    report: SpecReport


def align(
    model_a: nn.Module, model_b: nn.Module, example: Example, *, method: str = "weight_matching",
    data: Batches | None = None, examples: int | None = 1024, seed: int = 0, options: TraceOptions | None = None,
    **search_options: Any,
) -> Alignment:
    """Permute ``model_b`` towards ``model_a`` by ``method`` (a name of :data:`permlmc.search.SEARCHES`); methods
    that evaluate the network read the first ``examples`` of ``data``."""
    verified = spec_of(model_a, example, options)
    needs = REQUIRES.get(method)
    if needs is None:
        get_search(method)  # raises, naming the known methods
    search_data = None
    if needs:
        if data is None:
            raise ValueError(f"search method {method!r} needs data (it reads {', '.join(needs)})")
        x, y = take(data, examples)
        skeleton = copy.deepcopy(model_a).eval()
        features = unit_features(skeleton, verified.spec) if "features" in needs else None
        search_data = SearchData(functional_forward(skeleton), x, y, features)
    perm = get_search(method)(verified.spec, _state(model_a), _state(model_b), data=search_data,
                              generator=torch.Generator().manual_seed(seed), **search_options)
    return Alignment(_permuted(model_b, verified.spec, perm), perm, verified.spec, verified.report)


@dataclass(frozen=True)
class Curve:
    """Loss (mean cross-entropy, nats) and error along ``(1 - alpha) A + alpha B``, with Eq. 1's barriers: the sup
    over the grid and the value at alpha = 1/2."""

    alphas: list[float]
    loss: list[float]
    error: list[float]
    loss_barrier: float
    error_barrier: float
    loss_barrier_mid: float
    error_barrier_mid: float
    bn_mode: str


def barrier(
    model_a: nn.Module, model_b: nn.Module, data: Batches, *, alphas: int = 11, examples: int | None = None,
    bn_mode: str = "interpolate", statistics: Batches | None = None, statistics_batches: int = 10,
) -> Curve:
    """The interpolation curve of two networks on the first ``examples`` of ``data`` and its barriers;
    ``bn_mode`` ``reset`` or ``repair`` re-estimates BatchNorm statistics on ``statistics_batches`` input batches
    of ``statistics`` (default: ``data``)."""
    grid = alpha_grid(alphas)
    x, y = take(data, examples)
    batches = [b[0] for b in itertools.islice(statistics if statistics is not None else data, statistics_batches)] \
        if bn_mode != "interpolate" else []
    skeleton = copy.deepcopy(model_a).eval()
    points = interpolation_curve(skeleton, _state(model_a), _state(model_b), grid, {"data": (x, y)},
                                 bn_mode=bn_mode, batches=batches, shortcut=False)
    found = {metric: [p.value for p in points if p.metric == metric] for metric in ("loss", "error")}
    bars = curve_barriers((p.metric, p.alpha, p.value) for p in points)
    return Curve(grid, found["loss"], found["error"], bars["loss"]["sup"], bars["error"]["sup"],
                 bars["loss"]["mid"], bars["error"]["mid"], bn_mode)


def merge(
    models: Sequence[nn.Module], example: Example, *, batches: Batches | None = None,
    statistics_batches: int = 10, seed: int = 0, options: TraceOptions | None = None,
) -> nn.Module:
    """MergeMany (Ainsworth et al. 2023, Alg. 3): all ``models`` aligned to one another, then averaged; a network
    with BatchNorm has its statistics re-estimated on ``statistics_batches`` input batches of ``batches``."""
    verified = spec_of(models[0], example, options)
    states = [_state(m) for m in models]
    perms = merge_many(verified.spec, states, generator=torch.Generator().manual_seed(seed))
    aligned = [apply_permutation(verified.spec, p, s) for p, s in zip(perms, states, strict=True)]
    inputs = [b[0] for b in itertools.islice(batches, statistics_batches)] if batches is not None else []
    skeleton = copy.deepcopy(models[0])
    skeleton.load_state_dict(weight_average(aligned, model=skeleton, batches=inputs))
    return skeleton.eval()
