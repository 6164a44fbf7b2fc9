"""Merging n models: MergeMany (Ainsworth et al. 2023, "Git Re-Basin", Alg. 3) and the cycle consistency of
pairwise alignments.

MergeMany aligns each model in turn (random order) to the mean of the others as currently permuted, by weight
matching warm-started from its current permutation, and repeats until a whole round changes nothing (or
``max_rounds``). Unlike aligning every model to the first, no model is the reference; the result is expressed so
that model 0 keeps the identity (permuting every model by one permutation changes neither the merge nor any
barrier). For n = 2 it is pairwise weight matching: at the fixed point, model 1's permutation is one that weight
matching against model 0 cannot improve. Weight matching keeps attention heads whole (it solves a heads group's
members together), and so does the result: whole-head permutations stay so under inversion and composition.

Cycle consistency of three models a, b, c: with ``P_xy`` aligning y to x (``apply(P_xy, y) ~ x``), the alignment
through b is ``P_bc`` then ``P_ab``; the error is the fraction of units where ``P_ac`` differs from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from permlmc.permutation import PermutationSpec, agreement, apply_permutation, compose, identity, invert
from permlmc.search.weight_matching import match
from permlmc.types import Permutation, StateDict


def _mean(states: Sequence[StateDict]) -> StateDict:
    """The entrywise mean of floating entries, BatchNorm statistics included (what the next model is matched to;
    the merged network itself is :func:`permlmc.studies.ensembles.weight_average`)."""
    first = states[0]
    return {k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v for k, v in first.items()}


def merge_many(
    spec: PermutationSpec, models: Sequence[StateDict], *, generator: torch.Generator, max_rounds: int = 100,
    max_iter: int = 100,
) -> list[Permutation]:
    """One permutation per model (model 0's the identity) aligning all of ``models`` to each other (module doc);
    ``max_iter`` bounds each weight matching's sweeps."""
    if len(models) < 2:
        raise ValueError(f"merge_many needs at least 2 models, got {len(models)}")
    models = [{k: v.detach().cpu() for k, v in m.items()} for m in models]
    perms = [identity(spec, m) for m in models]
    permuted = list(models)
    for _ in range(max_rounds):
        changed = False
        for i in torch.randperm(len(models), generator=generator).tolist():
            others = _mean([p for j, p in enumerate(permuted) if j != i])
            new = match(spec, others, models[i], perms[i], generator=generator, max_iter=max_iter)
            if any(not torch.equal(new[name], perms[i][name]) for name in new):
                perms[i], permuted[i], changed = new, apply_permutation(spec, new, models[i]), True
        if not changed:
            break
    back = invert(perms[0])
    return [compose(p, back) for p in perms]


def cycle_error(p_ab: Permutation, p_bc: Permutation, p_ac: Permutation) -> float:
    """Fraction of units (pooled over permutation names) where ``p_ac`` differs from ``p_bc`` then ``p_ab``."""
    return 1.0 - agreement(p_ac, compose(p_bc, p_ab))["all"]
