"""Searches over n models at once (Entezari et al. 2022, §4.2), all with one signature and no I/O::

    search_group(spec, params, *, data=None, generator, progress=None, **options) -> list[Permutation]

``params`` holds the n models' state dicts; the result holds one permutation per model, to apply to that model.
Model 0 is the reference: its permutation is the identity. Names in :data:`GROUP_SEARCHES` are the group
searches proper (SA1, SA2); ``pairwise:<method>`` lifts any pairwise search of :data:`permlmc.search.SEARCHES` by
aligning every model to model 0 with it, so every method can be compared on the same n models with
:func:`permlmc.studies.groups.average_pairwise_barrier`, the quantity the paper reports for every method.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Any, Protocol

import torch

from permlmc.permutation import PermutationSpec, identity
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict

__all__ = ["GROUP_SEARCHES", "PAIRWISE_PREFIX", "GroupSearch", "get_group_search", "group_search_names", "lift"]

PAIRWISE_PREFIX = "pairwise:"

# name -> "module:function"; imported on first use (simanneal loads slowly and most jobs need no group search).
GROUP_SEARCHES: dict[str, str] = {
    "sa1": "permlmc.search.annealing.group:sa1",
    "sa2": "permlmc.search.annealing.group:sa2",
}


class GroupSearch(Protocol):
    def __call__(
        self,
        spec: PermutationSpec,
        params: Sequence[StateDict],
        *,
        data: SearchData | None = None,
        generator: torch.Generator,
        progress: Progress | None = None,
        **options: Any,
    ) -> list[Permutation]: ...


def group_search_names() -> list[str]:
    """Every valid name: the group searches, then ``pairwise:<method>`` for each registered pairwise search."""
    from permlmc.search import SEARCHES  # at call time: the package may import this module while it initialises

    return sorted(GROUP_SEARCHES) + [PAIRWISE_PREFIX + method for method in sorted(SEARCHES)]


def get_group_search(name: str) -> GroupSearch:
    if name.startswith(PAIRWISE_PREFIX):
        return lift(name[len(PAIRWISE_PREFIX):])
    if name not in GROUP_SEARCHES:
        raise ValueError(f"group search {name!r} is unknown; choose one of {group_search_names()}")
    module, function = GROUP_SEARCHES[name].split(":")
    search: GroupSearch = getattr(import_module(module), function)
    return search


def lift(method: str) -> GroupSearch:
    """The group search that aligns each model ``i > 0`` to model 0 with pairwise search ``method``.

    Every pairwise call gets the same options and draws from the one ``generator`` in model order; progress
    records are tagged with ``"model": i``.
    """
    from permlmc.search import SEARCHES, get_search  # at call time, as in group_search_names

    if method not in SEARCHES:
        raise ValueError(f"group search {PAIRWISE_PREFIX + method!r} names no pairwise search; choose one of "
                         f"{group_search_names()}")
    pairwise = get_search(method)

    def search_group(
        spec: PermutationSpec,
        params: Sequence[StateDict],
        *,
        data: SearchData | None = None,
        generator: torch.Generator,
        progress: Progress | None = None,
        **options: Any,
    ) -> list[Permutation]:
        if len(params) < 2:
            raise ValueError(f"a group search needs at least 2 models, got {len(params)}")
        perms = [identity(spec, params[0])]
        for i, model in enumerate(params[1:], start=1):
            report = None if progress is None else _tagged(progress, i)
            perms.append(pairwise(spec, params[0], model, data=data, generator=generator, progress=report,
                                  **options))
        return perms

    search_group.__qualname__ = search_group.__name__ = PAIRWISE_PREFIX + method
    return search_group


def _tagged(progress: Progress, model: int) -> Progress:
    return lambda record: progress({**record, "model": model})
