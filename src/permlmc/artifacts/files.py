"""Atomic, pickle-free artifact I/O: safetensors for tensors, JSON sidecars with checksums.

torch and safetensors are imported only by the functions that read or write tensors: the table and figure verbs
use this module without paying torch's start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from permlmc.types import PathLike, StateDict


class ArtifactError(RuntimeError):
    """An input file is missing, truncated, corrupted or of the wrong kind."""


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A killed job therefore never leaves a half-written file under the final name.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates owner-only files; results are meant to be shared
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: PathLike, payload: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: PathLike) -> dict[str, Any]:
    try:
        with open(path) as handle:
            result: dict[str, Any] = json.load(handle)
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); delete it and rerun the job that writes it") from exc
    return result


def save_tensors(
    path: PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> str:
    """Write ``tensors`` atomically as safetensors; return the file's SHA-256 for the sidecar."""
    from safetensors.torch import save_file

    contiguous = {key: value.detach().contiguous().cpu() for key, value in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=dict(metadata) if metadata else None)
    return sha256(path)


def load_tensors(path: PathLike, expected_sha256: str | None = None) -> StateDict:
    """Load a safetensors file (no pickle); verify its checksum when the sidecar recorded one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not os.path.exists(path):
        raise ArtifactError(f"{path}: file not found")
    if expected_sha256 is not None and sha256(path) != expected_sha256:
        raise ArtifactError(
            f"{path}: checksum differs from the one recorded in its JSON sidecar; the file is truncated or "
            "corrupted: delete it and rerun the job that writes it"
        )
    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a readable safetensors file ({exc}); delete it and rerun") from exc


def sidecar_path(path: PathLike) -> Path:
    """``x/model.safetensors`` -> ``x/model.json``."""
    return Path(path).with_suffix(".json")


def load_checked(path: PathLike) -> tuple[StateDict, dict[str, Any]]:
    """Load a tensor artifact together with its sidecar, verifying the recorded checksum."""
    meta = read_json(sidecar_path(path))
    return load_tensors(path, meta.get("sha256")), meta


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # tensors, arrays and NumPy scalars
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
