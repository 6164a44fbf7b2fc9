"""Checkpoints and permutation files: safetensors plus a JSON sidecar that makes each self-describing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from permlmc.artifacts.files import ArtifactError, load_checked, save_tensors, sidecar_path, write_json
from permlmc.axes import SpecError
from permlmc.models import Architecture, permutation_spec
from permlmc.permutation import PermutationSpec, permutation_layout
from permlmc.types import PathLike, Permutation, StateDict

CONVENTION = (
    "applying a permutation to model B gives B' whose unit j is unit perm[j] of B, i.e. "
    "index_select(tensor, axis, perm) on every (key, axis) listed in 'layout'; an entry [key, axis, start, block] "
    "acts on part of the axis: unit u is its entries start + u * block .. start + (u + 1) * block - 1"
)


def save_checkpoint(path: PathLike, arch: Architecture, state: StateDict, meta: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``model.json`` (architecture, checksum and the caller's metadata)."""
    digest = save_tensors(path, state)
    write_json(sidecar_path(path), {"architecture": arch.to_dict(), **meta, "sha256": digest})


SIDECAR_KEYS = {"model_name": "arch"}
"""Fields of :class:`Architecture` that a sidecar (and a config, a table) names otherwise."""


def load_checkpoint(
    path: PathLike, expect: Architecture | None = None, expect_name: str | None = None
) -> tuple[Architecture, StateDict, dict[str, Any]]:
    """Load and check a checkpoint: checksum, architecture as expected (``expect``, or its path name such as
    ``mlp-d1-w16`` in ``expect_name``), state dict covered by the spec."""
    state, meta = load_checked(path)
    try:
        arch = Architecture.from_dict(meta["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{sidecar_path(path)}: no valid 'architecture' entry ({exc})") from exc
    if expect is not None and arch != expect:
        differ = [f"{SIDECAR_KEYS.get(field.name, field.name)} {getattr(arch, field.name)!r} "
                  f"(expected {getattr(expect, field.name)!r})"
                  for field in dataclasses.fields(arch) if getattr(arch, field.name) != getattr(expect, field.name)]
        raise ArtifactError(f"{path}: checkpoint is a {arch.name} with {', '.join(differ)}, but this step expects a "
                            f"{expect.name} like the other checkpoints it reads")
    if expect_name is not None and arch.name != expect_name:
        raise ArtifactError(
            f"{path}: checkpoint is a {arch.name}, but this step expects a {expect_name}; "
            "delete the file and rerun the job that trains it"
        )
    try:
        spec = permutation_spec(arch)
        spec.validate(state)
        expected_shapes = {k: v.shape for k, v in _skeleton_state(arch).items()}
        wrong = {k: tuple(v.shape) for k, v in state.items() if v.shape != expected_shapes[k]}
        if wrong:
            raise SpecError(f"tensor shapes {wrong} do not match {arch.name}")
    except SpecError as exc:
        raise ArtifactError(f"{path}: state dict does not fit its architecture {arch.name}: {exc}") from exc
    return arch, state, meta


def load_checkpoints(
    paths: Sequence[PathLike], expect_name: str | None = None, *, expect: Architecture | None = None
) -> tuple[Architecture, list[StateDict]]:
    """Checkpoints of one architecture, in order: ``expect`` where given, else the first's (its path name checked
    against ``expect_name``), is what every one must be (:func:`load_checkpoint`)."""
    if not paths:
        raise ArtifactError("no checkpoints given: name at least one")
    arch, first, _ = load_checkpoint(paths[0], expect=expect, expect_name=expect_name)
    return arch, [first, *(load_checkpoint(path, expect=arch)[1] for path in paths[1:])]


def _skeleton_state(arch: Architecture) -> StateDict:
    from permlmc.models import build_model

    with torch.device("meta"):
        return build_model(arch).state_dict()


def save_permutation(
    path: PathLike, spec: PermutationSpec, perm: Permutation, meta: dict[str, Any]
) -> None:
    """``perm`` and its sidecar: the convention, where each permutation acts, its heads groups (attention: each
    group's members move whole heads of ``head_size`` units alike) where the spec has any, ``meta`` and a checksum."""
    digest = save_tensors(path, {name: p.to(torch.int64) for name, p in perm.items()})
    groups = [{"members": list(g.members), "head_size": g.head_size} for g in spec.heads]
    heads = {"heads": groups} if groups else {}
    write_json(
        sidecar_path(path),
        {"convention": CONVENTION, "layout": permutation_layout(spec), **heads, **meta, "sha256": digest},
    )


def load_permutation(path: PathLike, spec: PermutationSpec, params: StateDict) -> Permutation:
    """Load a permutation and check it is a valid permutation of the right sizes for ``spec``/``params``."""
    perm, _ = load_checked(path)
    try:
        spec.check_permutation(perm, params)
    except SpecError as exc:
        raise ArtifactError(f"{path}: {exc}") from exc
    return perm


def relative(path: PathLike) -> str:
    """Paths recorded in sidecars are as given (relative to the workflow directory when run by it)."""
    return str(Path(path))
