"""Permutation search algorithms, one module each, all with one signature and no I/O::

    search(spec, params_a, params_b, *, data=None, generator, progress=None, **options) -> Permutation

The result, applied to ``params_b``, should bring B into A's basin. Algorithms that need the network's
function (simulated annealing) receive it through :class:`SearchData`; they never see the model class.
"""

from __future__ import annotations

from importlib import import_module

from permlmc.search.base import Progress, Search, SearchData

__all__ = ["REQUIRES", "SEARCHES", "Progress", "Search", "SearchData", "get_search"]

# name -> module holding its ``search`` function; imported on first use (scipy and simanneal load slowly and
# most workflow jobs need neither).
SEARCHES: dict[str, str] = {
    "none": "permlmc.search.identity",
    "weight_matching": "permlmc.search.weight_matching",
    "sa": "permlmc.search.annealing.pairwise",
    "activation_matching": "permlmc.search.activation_matching",
    "functional_difference": "permlmc.search.functional_difference",
    "brute_force": "permlmc.search.brute_force",
    "ste": "permlmc.search.straight_through",
}

# name -> the :class:`SearchData` fields the method reads (empty: it needs no data at all); ``features`` is built
# with :func:`permlmc.search.features.unit_features`.
REQUIRES: dict[str, tuple[str, ...]] = {
    "none": (),
    "weight_matching": (),
    "sa": ("forward", "x", "y"),
    "activation_matching": ("x", "features"),
    "functional_difference": ("x", "features"),
    "brute_force": ("forward", "x", "y"),
    "ste": ("forward", "x", "y"),
}


def get_search(name: str) -> Search:
    if name not in SEARCHES:
        raise ValueError(f"search method {name!r} is unknown; choose one of {sorted(SEARCHES)}")
    search: Search = import_module(SEARCHES[name]).search
    return search
