"""A derived spec against a hand-written one: equal up to the names of the permutations, and renaming."""

from __future__ import annotations

from collections.abc import Mapping

from permlmc.axes import Axis, Heads, Piece, Stretch
from permlmc.permutation import PermutationSpec


def _place_sets(spec: PermutationSpec) -> dict[str, frozenset[Stretch]]:
    return {name: frozenset(places) for name, places in spec.stretches.items()}


def matching_names(first: PermutationSpec, second: PermutationSpec) -> dict[str, str] | None:
    """The renaming of ``first``'s permutations under which it equals ``second`` (every name acting on the same
    stretches of the same entries, the same entries listed, the same heads groups), or None when no renaming does."""
    if set(first.axes) != set(second.axes) or any(len(first.axes[k]) != len(second.axes[k]) for k in first.axes):
        return None
    by_places = {places: name for name, places in _place_sets(second).items()}
    renaming = {name: by_places.get(places) for name, places in _place_sets(first).items()}
    if None in renaming.values() or len(renaming) != len(by_places):
        return None
    names = {name: str(other) for name, other in renaming.items()}
    if _groups(renamed(first, names)) != _groups(second):
        return None
    return names


def _groups(spec: PermutationSpec) -> set[tuple[frozenset[str], int]]:
    return {(frozenset(group.members), group.head_size) for group in spec.heads}


def renamed(spec: PermutationSpec, names: Mapping[str, str]) -> PermutationSpec:
    """``spec`` with its permutations renamed by ``names``."""

    def rename(entry: Axis) -> Axis:
        if entry is None or isinstance(entry, str):
            return None if entry is None else names[entry]
        return tuple(Piece(None if p.name is None else names[p.name], p.units, p.block) for p in entry)

    return PermutationSpec({key: tuple(rename(entry) for entry in axes) for key, axes in spec.axes.items()},
                           heads=tuple(Heads(tuple(names[m] for m in g.members), g.head_size) for g in spec.heads))
