"""Check a permutation spec on the network itself: every permutation must leave its function unchanged.

For each permutation name alone, a random non-identity draw is applied (the others left at the identity) and
the network's outputs on the example input are compared with the unpermuted ones, in float64 and eval mode. The
check runs on a perturbed copy of the parameters (every floating entry moved by noise of its own scale, running
variances scaled by ``exp`` of noise): freshly initialised networks have constant BatchNorm weights and
statistics, under which a wrongly tied BatchNorm would go unseen. A member of a heads group (attention) is checked
alone with the units of one random head reordered and the other heads kept (reordering every head alike would miss
a network in which heads mix), and each group once more with its heads reordered in every member alike. One more
draw of all permutations together is checked on the parameters as given.

The tolerance follows from float64 rounding: a permutation only reorders sums, each reordered sum of ``n`` terms
changes by at most ``n eps`` of its terms' magnitude, and along the network these changes add up to at most the
total number of parameters times ``eps`` (relative to the largest output); any misplaced unit moves outputs by
orders of magnitude more.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from permlmc.axes import Heads, within_heads
from permlmc.permutation import PermutationSpec, apply_permutation, identity
from permlmc.types import Permutation, StateDict

EPS64 = torch.finfo(torch.float64).eps


@dataclass(frozen=True)
class PermutationCheck:
    """One permutation's check: its units, the largest output change relative to the largest output, and the
    share of the model's parameters (entries of ``named_parameters``) it moves."""

    name: str
    """The permutation checked, or ``heads of a, b`` for a heads group's head order."""
    units: int
    deviation: float
    parameter_share: float
    moves: tuple[str, ...] = ()
    """The permutations the check's draw moved (its own name, or the group's members)."""


@dataclass(frozen=True)
class SpecReport:
    """Verification of a spec on a network (module doc)."""

    checks: tuple[PermutationCheck, ...]
    joint_deviation: float
    """All permutations drawn at once, on the parameters as given."""
    tolerance: float
    parameter_share: float
    """Share of the model's parameters on which at least one permutation acts."""
    fixed: Mapping[tuple[str, int], str]
    """Axes left in place and why (from the derivation; empty for a spec written by hand)."""
    seconds: float

    @property
    def ok(self) -> bool:
        return self.joint_deviation <= self.tolerance and all(c.deviation <= self.tolerance for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.deviation > self.tolerance]


class SpecMismatch(ValueError):
    """A spec changes the network's function."""


def _draw(n: int, generator: torch.Generator) -> Tensor:
    """A random permutation of ``range(n)`` other than the identity (for n >= 2)."""
    perm = torch.randperm(n, generator=generator)
    if n > 1 and torch.equal(perm, torch.arange(n)):
        perm = perm.roll(1)
    return perm


def _draws(
    spec: PermutationSpec, sizes: Mapping[str, int], generator: torch.Generator
) -> list[tuple[str, Permutation]]:
    """The checks' draws: ``(label, permutation of the names it moves)``, one per plain permutation, one per member
    of a heads group (within its heads) and one per group (its heads, every member alike)."""
    draws: list[tuple[str, Permutation]] = []
    for name, units in sizes.items():
        group = spec.group_of(name)
        if group is None:
            draws.append((name, {name: _draw(units, generator)}))
            continue
        heads = torch.arange(units // group.head_size)
        within = torch.arange(group.head_size).repeat(len(heads), 1)
        within[int(torch.randint(len(heads), (1,), generator=generator))] = _draw(group.head_size, generator)
        draws.append((name, {name: within_heads(heads, within)}))  # one head's units reordered, the others kept
        if name == group.members[-1]:
            draws.append((_label(group), _moved_heads(group, units, generator)))
    return draws


def _label(group: Heads) -> str:
    return f"heads of {', '.join(group.members)}"


def _moved_heads(group: Heads, units: int, generator: torch.Generator) -> Permutation:
    order = _draw(units // group.head_size, generator)
    return {name: within_heads(order, torch.arange(group.head_size).expand(len(order), -1)) for name in group.members}


def _joint(spec: PermutationSpec, sizes: Mapping[str, int], generator: torch.Generator) -> Permutation:
    """Every permutation at once: plain ones by :func:`_draw`, each heads group moving its heads and the units
    within them."""
    joint = {name: _draw(n, generator) for name, n in sizes.items() if spec.group_of(name) is None}
    for group in spec.heads:
        units = sizes[group.members[0]]
        moved = _moved_heads(group, units, generator)
        for name in group.members:
            within = torch.stack([_draw(group.head_size, generator) for _ in range(units // group.head_size)])
            joint[name] = moved[name][within_heads(torch.arange(len(within)), within)]
    return {name: joint[name] for name in sizes}


def perturbed(params: StateDict, generator: torch.Generator, scale: float = 0.5) -> StateDict:
    """Every floating entry plus noise of ``scale`` times its root mean square (1 for an all-zero entry); running
    variances multiplied by ``exp`` of such noise (they stay positive)."""
    out: StateDict = {}
    for key, value in params.items():
        if not value.is_floating_point():
            out[key] = value
            continue
        noise = torch.randn(value.shape, generator=generator, dtype=value.dtype).to(value.device)
        if key.endswith("running_var"):
            out[key] = value * torch.exp(scale * noise)
        else:
            rms = float(value.pow(2).mean().sqrt()) if value.numel() else 1.0
            out[key] = value + scale * (rms or 1.0) * noise
    return out


def outputs(model: nn.Module, params: StateDict, inputs: tuple[Tensor, ...]) -> Tensor:
    """Every floating output of ``model`` (a tensor, or tensors in tuples, lists and dicts) as one flat tensor."""
    found: list[Tensor] = []

    def collect(value: object) -> None:
        if isinstance(value, Tensor):
            found.append(value.flatten().double())
        elif isinstance(value, tuple | list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(functional_call(model, params, inputs))
    return torch.cat(found) if found else torch.zeros(0, dtype=torch.float64)


def _deviation(forward: nn.Module, params: StateDict, expected: Tensor, inputs: tuple[Tensor, ...]) -> float:
    got = outputs(forward, params, inputs)
    if not len(expected):
        return 0.0
    scale = float(expected.abs().max()) or 1.0
    return float((got - expected).abs().max()) / scale


@torch.no_grad()
def verify_spec(
    model: nn.Module, spec: PermutationSpec, example: Tensor | tuple[Tensor, ...], *,
    fixed: Mapping[tuple[str, int], str] | None = None, seed: int = 0,
) -> SpecReport:
    """Check every permutation of ``spec`` on ``model`` (module doc); ``model`` itself is left as it was."""
    start = time.perf_counter()
    network = copy.deepcopy(model).double().eval()
    inputs = tuple(x.double() if x.is_floating_point() else x for x in (example if isinstance(example, tuple)
                                                                          else (example,)))
    given = {k: v.double() if v.is_floating_point() else v for k, v in network.state_dict().items()}
    spec.validate(given)
    generator = torch.Generator().manual_seed(seed)
    noisy = perturbed(given, generator)
    learnt = {key: value.numel() for key, value in network.named_parameters()}
    total = sum(learnt.values()) or 1
    tolerance = max(total, 1000) * EPS64
    expected = outputs(network, noisy, inputs)
    base = identity(spec, given)
    checks = []
    sizes = spec.sizes(given)
    for label, draw in _draws(spec, sizes, generator):
        perm: Permutation = {**base, **draw}
        moved = {s.key for name in draw for s in spec.stretches[name]}
        permuted = {**noisy, **apply_permutation(spec, perm, {key: noisy[key] for key in moved})}  # only its entries
        checks.append(PermutationCheck(label, len(next(iter(draw.values()))),
                                       _deviation(network, permuted, expected, inputs),
                                       sum(learnt.get(key, 0) for key in moved) / total, tuple(draw)))
    joint = _joint(spec, sizes, generator)
    spec.check_permutation(joint, given)
    joint_deviation = _deviation(network, apply_permutation(spec, joint, given), outputs(network, given, inputs),
                                 inputs)
    touched = {s.key for places in spec.stretches.values() for s in places}
    return SpecReport(tuple(checks), joint_deviation, tolerance, sum(learnt.get(k, 0) for k in touched) / total,
                      dict(fixed or {}), time.perf_counter() - start)


def require_verified(report: SpecReport, what: str) -> None:
    """Raise :class:`SpecMismatch` naming the permutations of ``what``'s spec that change its function."""
    if report.ok:
        return
    worst = sorted(report.checks, key=lambda c: -c.deviation)[:5]
    detail = ", ".join(f"{c.name} ({c.deviation:.2e})" for c in worst if c.deviation > report.tolerance)
    raise SpecMismatch(
        f"the permutation spec of {what} changes its function (tolerance {report.tolerance:.1e}): {detail or 'joint'}"
        f"{'' if detail else f' draw {report.joint_deviation:.2e}'}; pin the axes involved or give the module's "
        "entries by hand")
