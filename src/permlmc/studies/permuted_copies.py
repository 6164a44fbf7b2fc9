"""Our model S′ (Entezari et al. 2022, §3.5): random permutations of one trained network, each checked to compute
the same function."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from permlmc import seeding
from permlmc.evaluation import Forward, max_logit_difference
from permlmc.permutation import PermutationSpec, apply_permutation, random_permutation
from permlmc.types import Permutation, StateDict


class NotTheSameFunction(RuntimeError):
    """A permuted copy whose logits differ from the original's: the permutation spec does not fit the network."""


@dataclass(frozen=True)
class PermutedCopy:
    """One copy of S′ and what shows it is the original network."""

    permutation: Permutation
    """The permutation drawn (apply it to the original to get ``state``)."""
    state: StateDict
    """The copy's weights."""
    max_logit_difference: float
    """max |logit(copy) - logit(original)| on the check's inputs: zero up to rounding."""


def permuted_copy(spec: PermutationSpec, state: StateDict, forward: Forward, x: Tensor, *, seed: int, copy: int,
                  tolerance: float) -> PermutedCopy:
    """Copy ``copy`` (1-based) of network ``seed``: a random permutation of ``spec`` drawn from the stream of that
    seed and copy, applied to ``state``. Raises when the copy's logits on ``x`` differ from the original's by more
    than ``tolerance`` (:class:`NotTheSameFunction`: a spec that does not fit the network)."""
    perm = random_permutation(spec, state, seeding.generator(seed, seeding.PERMUTED_COPY, copy))
    permuted = apply_permutation(spec, perm, state)
    diff = max_logit_difference(forward, state, permuted, x)
    if not diff <= tolerance:
        raise NotTheSameFunction(f"permuted copy {copy} is not the same function as the network it permutes: max "
                           f"|dlogit| {diff} > {tolerance}; the permutation spec does not fit the network")
    return PermutedCopy(perm, permuted, diff)
