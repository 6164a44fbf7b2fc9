"""What each permuted unit computes: post-activation features per permutation name, and their moments.

A permutation name ``P`` reorders the units that the modules writing ``P`` produce: every module whose
``<module>.weight`` carries ``P`` on axis 0 of the spec (a Linear or Conv output, a BatchNorm) returns a tensor
whose axis 1 holds ``P``'s units. Nothing here names an architecture; the sites are read off the spec and the
forward pass:

* A *site* is an output of such a module that no other module of ``P`` consumes directly: a conv followed by its
  BatchNorm is one site (the BatchNorm's output), while a residual branch and its projection shortcut, both
  writing one stream, are two.
* A site's features are ``relu(output)`` (post-activation, as in Git Re-Basin's activation matching, Ainsworth
  et al. 2023), with spatial positions as samples: ``(N, C, H, W) -> (N * H * W, C)``. The units are on axis 1 of
  a convolution's or BatchNorm's output and on the last axis of a Linear's or LayerNorm's (tokens ``(N, T, D)``
  then count as samples too). Where the network adds a
  skip connection before its ReLU, this is the ReLU of the branch alone.
* All sites of one name (a residual stream is written by every block of its stage) are concatenated along the
  sample axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from permlmc.permutation import PermutationSpec
from permlmc.search.base import Features
from permlmc.types import StateDict

BATCH = 256
"""Examples per forward pass when accumulating moments (bounds the memory of one pass's features)."""


def writers(model: nn.Module, spec: PermutationSpec) -> dict[str, str]:
    """Module path -> the permutation name on its outputs, for every module whose weight has one on axis 0."""
    modules = dict(model.named_modules())
    out: dict[str, str] = {}
    for key, axes in spec.axes.items():
        path = key.removesuffix(".weight")
        if key.endswith(".weight") and axes and isinstance(axes[0], str) and path in modules:
            out[path] = axes[0]
    missing = sorted(set(spec.names) - set(out.values()))
    if missing:
        raise ValueError(f"permutations {missing} have no module whose weight carries them whole on axis 0: "
                         "activation-based searches read the outputs of such a module (use weight_matching, sa or "
                         "ste for this network)")
    return out


LAST_AXIS_UNITS = (nn.Linear, nn.LayerNorm, nn.Embedding)
"""Modules whose outputs hold their units on the last axis (the others: on axis 1)."""


def samples_by_units(module: nn.Module, output: Tensor) -> Tensor:
    """``output`` as (samples, units): every axis but the units' is a sample axis."""
    axis = -1 if isinstance(module, LAST_AXIS_UNITS) else 1
    return output.movedim(axis, -1).reshape(-1, output.shape[axis])


def unit_features(model: nn.Module, spec: PermutationSpec) -> Features:
    """``features(params, x)`` -> per permutation name, its units' post-activation values, (samples, units).

    Runs ``model`` (in eval mode, no grad) through ``functional_call`` with forward hooks on the writing modules
    (see the module doc); the hooks exist only during the call, so ``model`` can be shared with other code.
    Names appear in the order their first site is produced by the forward pass.
    """
    sites = writers(model, spec)
    modules = dict(model.named_modules())
    model.eval()

    def features(params: StateDict, x: Tensor) -> dict[str, Tensor]:
        # per hook call: (name, raw output, post-activation); raw outputs are kept to recognise consumers
        records: list[tuple[str, Tensor, Tensor]] = []
        consumed: set[int] = set()

        def hook(name: str) -> Any:
            def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
                for index, (other, raw, _) in enumerate(records):
                    if other == name and any(t is raw for t in inputs):
                        consumed.add(index)
                # relu returns a new tensor: later in-place ops on `output` cannot change what is stored
                value = samples_by_units(module, torch.relu(output))  # (N * H * W, C)
                records.append((name, output, value))

            return record

        handles = [modules[path].register_forward_hook(hook(name)) for path, name in sites.items()]
        try:
            with torch.no_grad():
                functional_call(model, params, (x,))
        finally:
            for handle in handles:
                handle.remove()
        out: dict[str, list[Tensor]] = {}
        for index, (name, _, value) in enumerate(records):
            if index not in consumed:
                out.setdefault(name, []).append(value)
        return {name: torch.cat(values) for name, values in out.items()}

    return features


@dataclass(frozen=True)
class Moments:
    """First and second moments of one name's features in A (``a``) and B (``b``), over ``count`` samples, in
    float64: ``mean_a`` (n,), ``aa = E[a a^T]`` (n, n), ``ab = E[a b^T]`` (n, n), and likewise for B. Unit ``j``
    of B is B's own unit ``j`` (no permutation applied)."""

    count: int
    mean_a: Tensor
    mean_b: Tensor
    aa: Tensor
    bb: Tensor
    ab: Tensor

    def correlation(self, eps: float = 1e-12) -> Tensor:
        """Pearson correlation ``C[i, j]`` of A's unit ``i`` with B's unit ``j``, (n, n); 0 for a constant unit."""
        std_a = (self.aa.diagonal() - self.mean_a**2).clamp_min(0).sqrt()
        std_b = (self.bb.diagonal() - self.mean_b**2).clamp_min(0).sqrt()
        cov = self.ab - torch.outer(self.mean_a, self.mean_b)
        scale = torch.outer(std_a, std_b)
        return torch.where(scale > eps, cov / scale.clamp_min(eps), torch.zeros_like(cov))


@torch.no_grad()
def moments(
    features: Features, params_a: StateDict, params_b: StateDict, x: Tensor, batch_size: int = BATCH
) -> dict[str, Moments]:
    """:class:`Moments` of every name's features on ``x``, accumulated ``batch_size`` examples at a time (the
    features themselves are never all held at once)."""
    if len(x) == 0:
        raise ValueError("moments need at least one example")
    sums: dict[str, list[Tensor]] = {}
    counts: dict[str, int] = {}
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        fa, fb = features(params_a, chunk), features(params_b, chunk)
        for name, a in fa.items():
            a, b = a.double(), fb[name].double()  # (S, n) each
            terms = [a.sum(0), b.sum(0), a.T @ a, b.T @ b, a.T @ b]
            if name in sums:
                for total, term in zip(sums[name], terms, strict=True):
                    total += term
            else:
                sums[name] = terms
            counts[name] = counts.get(name, 0) + len(a)
    return {name: Moments(counts[name], *(t / counts[name] for t in s)) for name, s in sums.items()}
