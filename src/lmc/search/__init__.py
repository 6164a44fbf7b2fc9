"""Permutation search algorithms, one module each, all with one signature and no I/O::

    search(spec, params_a, params_b, *, data=None, generator, progress=None, **options) -> Permutation

The result, applied to ``params_b``, should bring B into A's basin. Algorithms that need the network's
function (simulated annealing) receive it through :class:`SearchData`; they never see the model class.
"""

from __future__ import annotations

from lmc.search import annealing, identity, weight_matching
from lmc.search.base import Progress, Search, SearchData

__all__ = ["SEARCHES", "Progress", "Search", "SearchData", "get_search"]

SEARCHES: dict[str, Search] = {
    "none": identity.search,
    "weight_matching": weight_matching.search,
    "sa": annealing.search,
}


def get_search(name: str) -> Search:
    try:
        return SEARCHES[name]
    except KeyError:
        raise ValueError(f"search method {name!r} is unknown; choose one of {sorted(SEARCHES)}") from None
