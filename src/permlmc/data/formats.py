"""The raw file formats of the datasets, parsed without running pickle code: IDX (MNIST, Fashion-MNIST), pickled
CIFAR batches (through a restricted unpickler that rebuilds only arrays and plain containers) and SVHN's MATLAB
files. Each parser returns uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``; anything malformed is a
:class:`DatasetError` naming the file.
"""

from __future__ import annotations

import codecs
import copyreg
import gzip
import io
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from permlmc.artifacts.files import ArtifactError


class DatasetError(ArtifactError):
    """A dataset file exists but is malformed, truncated or of an unexpected kind."""


# ---- IDX --------------------------------------------------------------------------------------------------

_IDX_IMAGES, _IDX_LABELS = 2051, 2049


def _read_bytes(path: Path) -> bytes:
    """The (decompressed) content of ``path``; a damaged gzip stream is a :class:`DatasetError`."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read ({exc}); the file is truncated or corrupted") from exc


def _parse_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: big-endian int32 ``magic``, ``ndim`` big-endian uint32 sizes, data."""
    content = _read_bytes(path)
    header = 4 + 4 * ndim
    what = f"an IDX file with magic number {magic} and {ndim} dimension(s)"
    if len(content) < header:
        raise DatasetError(f"{path}: {len(content)} bytes, too short for the header of {what}")
    found = int.from_bytes(content[:4], "big")
    if found != magic:
        raise DatasetError(f"{path}: magic number {found}, expected {what}")
    dims = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(content) != expected:
        raise DatasetError(
            f"{path}: {len(content)} bytes, expected {expected} for sizes {dims}; "
            "the file is truncated or corrupted"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_split(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, H, W)`` uint8 and labels ``(N,)`` int64 from one pair of IDX files."""
    x = _parse_idx(images, _IDX_IMAGES, 3)[:, None]
    y = _parse_idx(labels, _IDX_LABELS, 1).astype(np.int64)
    if len(x) != len(y):
        raise DatasetError(f"{labels}: {len(y)} labels, expected {len(x)} to match {images}")
    return np.ascontiguousarray(x), y


# ---- CIFAR (restricted unpickling) -----------------------------------------------------------------------

_EXAMPLE = np.zeros(1, dtype=np.uint8)
_RECONSTRUCT = _EXAMPLE.__reduce__()[0]  # numpy's array constructor used by pickles, whatever its module
_FROMBUFFER = _EXAMPLE.__reduce_ex__(5)[0]  # used instead by protocol-5 pickles
_SCALAR = np.int64(0).__reduce__()[0]

_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _RECONSTRUCT
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_frombuffer"): _FROMBUFFER for module in ("numpy.core.numeric", "numpy._core.numeric")},
    **{(module, "scalar"): _SCALAR for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
    # Looked up by name: the type stubs do not declare this private helper of pickling.
    **{(module, "_reconstructor"): copyreg.__dict__["_reconstructor"] for module in ("copyreg", "copy_reg")},
    **{(module, cls.__name__): cls
       for module in ("builtins", "__builtin__")
       for cls in (object, list, dict, tuple, set, frozenset, bytes, bytearray, str, int, float, complex,
                   bool)},
}
"""Every global a pickled dict of numpy arrays and lists can need; anything else is refused.

Python 2 module names are listed too because the CIFAR files were written by Python 2.
"""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: a pickle naming any other global is refused."""

    def __init__(self, handle: io.BufferedIOBase, source: Path) -> None:
        # latin1 maps Python 2 byte strings (keys and numpy buffers) one-to-one onto str.
        super().__init__(handle, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self.source}: the pickle references {module}.{name}; only numpy arrays, lists and dicts "
                "are accepted in a dataset file"
            ) from None


# What malformed (rather than malicious) pickle content raises while being rebuilt.
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OSError,
)


def _safe_unpickle(path: Path) -> Any:
    """Load ``path`` with :class:`_RestrictedUnpickler`; malformed content is a :class:`DatasetError`."""
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle, path).load()
    except _UNPICKLE_ERRORS as exc:
        raise DatasetError(f"{path}: not a readable pickled dataset batch ({exc})") from exc


def _text_keys(batch: Any, path: Path) -> dict[str, Any]:
    """The batch dict with ``bytes`` keys decoded, so files pickled with either key type read alike."""
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in batch.items()}


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch: ``data`` rows of 3072 uint8 (R, G, B planes of 32x32) -> ``(N, 3, 32, 32)``; labels (N,)."""
    batch = _text_keys(_safe_unpickle(path), path)
    for key in ("data", label_key):
        if key not in batch:
            raise DatasetError(f"{path}: key {key!r} missing; found {sorted(batch)}")
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape[1:] == (3072,)):
        raise DatasetError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: {label_key!r} must hold {len(data)} integer labels, not {labels.shape}")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32)), labels.astype(np.int64)


# ---- SVHN -------------------------------------------------------------------------------------------------


def read_svhn_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (H, W, 3, N) -> ``(N, 3, H, W)`` uint8; ``y`` (N, 1) with 10 standing for the digit 0."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), variable_names=["X", "y"])
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DatasetError(f"{path}: not a readable MATLAB file with 'X' and 'y' ({exc})") from exc
    x, y = mat.get("X"), mat.get("y")
    if not (isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[2] == 3 and x.dtype == np.uint8):
        raise DatasetError(f"{path}: 'X' must be a uint8 array of shape (H, W, 3, N)")
    if not isinstance(y, np.ndarray) or y.size != x.shape[3]:
        raise DatasetError(f"{path}: 'y' must hold {x.shape[3]} labels")
    labels = y.reshape(-1).astype(np.int64) % 10
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels
