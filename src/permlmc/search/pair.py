"""One pair's search as a pair job runs it: any method of :data:`~permlmc.search.SEARCHES` on a fresh search stream
of the job's seed (so a pair's result does not depend on the pairs searched before it), with the network's residual
streams optionally left in place (search option :data:`STREAM`), and a result that holds every permutation of the
spec."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from permlmc import seeding
from permlmc.models import Architecture, residual_streams
from permlmc.permutation import PermutationSpec, identity, leave_in_place
from permlmc.search import get_search
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict

STREAM = "stream"
"""A search option of every method: ``0`` leaves the network's residual streams in place (the search runs on the
spec without them, whose permutations stay the identity), ``1`` (the default) searches them with the rest."""


def streams_left(arch: Architecture, options: Mapping[str, Any]) -> tuple[str, ...]:
    """The permutations a search with ``options`` leaves in place: the residual streams for ``stream = 0``."""
    value = options.get(STREAM, 1)
    if value not in (0, 1):
        raise ValueError(f"search option {STREAM!r} must be 0 (residual streams left in place) or 1, got {value!r}")
    if value == 1:
        return ()
    streams = residual_streams(arch)
    if not streams:
        raise ValueError(f"{arch.name} has no residual streams to leave in place (search option {STREAM!r} = 0); "
                         "drop the -stream0 variant from search.methods for it")
    return streams


@dataclass(frozen=True)
class PairSearch:
    permutation: Permutation
    """B's permutation, on the CPU: every permutation of the spec (those left in place: the identity)."""
    seconds: float
    """The search's own wall time."""


def search_pair(
    method: str, spec: PermutationSpec, a: StateDict, b: StateDict, data: SearchData | None, *,
    options: Mapping[str, Any], seed: int, left: Sequence[str] = (), progress: Progress | None = None,
) -> PairSearch:
    """Search a permutation of B towards A with ``method`` and its ``options`` (``stream`` aside), drawing from a
    fresh search stream of ``seed``. ``left``: permutations kept at the identity (:func:`streams_left`); the search
    sees the spec without them."""
    if left and not set(left) & set(spec.names):
        raise ValueError(f"search option {STREAM!r} = 0 leaves the residual streams in place, but the spec has none "
                         "(search.residual: internal leaves them in place already); drop the -stream0 variant")
    searched = leave_in_place(spec, [name for name in left if name in spec.names]) if left else spec
    search = get_search(method)  # looked up before the clock starts: wall time is the search's own
    start = time.perf_counter()
    found = search(searched, a, b, data=data, generator=seeding.generator(seed, seeding.SEARCH), progress=progress,
                   **{key: value for key, value in options.items() if key != STREAM})
    seconds = time.perf_counter() - start
    if set(found) != set(searched.names):
        raise RuntimeError(f"{method} returned permutations {sorted(found)}, not those of its spec "
                           f"{sorted(searched.names)}")
    kept = identity(spec, b)  # the permutations left in place
    return PairSearch({name: found[name].cpu() if name in found else kept[name] for name in spec.names}, seconds)
