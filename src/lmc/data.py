"""Datasets: read raw files without running pickle code, prepare uint8 tensors, load model-ready splits.

Three stages:

* a registry of readers turns the files of one dataset into raw uint8 arrays ``(N, C, H, W)`` and int64
  labels ``(N,)``;
* :func:`prepare_dataset` optionally resizes and subsets them and computes per-channel statistics;
  :func:`write_prepared` stores the result as safetensors plus a JSON sidecar with checksum and provenance;
* :func:`load_dataset` verifies such a file and returns float32 normalised tensors in a :class:`Dataset`.
"""

from __future__ import annotations

import codecs
import copyreg
import gzip
import hashlib
import io
import os
import pickle
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lmc import seeding
from lmc.io import ArtifactError, load_tensors, read_json, save_tensors, sidecar_path, write_json
from lmc.provenance import provenance

PathLike = str | os.PathLike[str]

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files.

Module-level so that tests can point it elsewhere; searched after every directory under ``root``.
"""

TENSOR_KEYS = ("train_x", "train_y", "test_x", "test_y")

_CHUNK = 4096  # examples per step when resizing or reducing, to bound float memory on large datasets


class DatasetError(ArtifactError):
    """A dataset file exists but is malformed, truncated or of an unexpected kind."""


class DatasetNotFoundError(ArtifactError):
    """The files of a dataset are in none of the searched directories (and were not downloaded)."""


# --------------------------------------------------------------------------------------------------------
# Raw readers
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == is meaningless for arrays
class RawDataset:
    """Raw splits as read from disk.

    ``train_x``/``test_x``: uint8 ``(N, C, H, W)``; ``train_y``/``test_y``: int64 ``(N,)``; ``scale`` is the
    largest value a pixel can take; ``sources`` are the files read.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    scale: int
    num_classes: int
    sources: list[Path]


Reader = Callable[[Path, bool], RawDataset]
"""``reader(root, download) -> RawDataset``."""


def _file_choices(name: str) -> tuple[str, str]:
    """A file is accepted extracted or gzipped; the extracted one is tried first as it reads faster."""
    return (name, name + ".gz")


def _locate(dirs: Sequence[Path], files: Sequence[Sequence[str]]) -> list[Path] | None:
    """The first directory of ``dirs`` holding one choice of every entry of ``files``, as full paths."""
    for directory in dirs:
        found = [_first_file(directory, choices) for choices in files]
        if all(path is not None for path in found):
            return [path for path in found if path is not None]
    return None


def _first_file(directory: Path, choices: Sequence[str]) -> Path | None:
    return next((directory / c for c in choices if (directory / c).is_file()), None)


_HINTS: dict[str, str] = {
    "fashion_mnist": "; or install Debian's package (`apt-get install dataset-fashion-mnist`), which puts "
    f"the files in {DEBIAN_FASHION_MNIST_DIR}",
}


def _not_found(name: str, dirs: Sequence[Path], files: Sequence[Sequence[str]], download: bool) -> str:
    wanted = ", ".join(" or ".join(choices) for choices in files)
    searched = "\n".join(f"  {d}" for d in dirs)
    attempt = " (download was attempted but did not produce them)" if download else ""
    return (
        f"dataset {name!r}: files not found{attempt}. Expected {wanted} in one of the searched directories:\n"
        f"{searched}\nTo provide them: set `data.root` in the config to a directory holding these files, "
        f"or set `data.download: true` on a machine with internet access{_HINTS.get(name, '')}."
    )


def _find_or_fetch(
    name: str, dirs: Sequence[Path], files: Sequence[Sequence[str]], download: bool, fetch: Callable[[], None]
) -> list[Path]:
    """Locate the files; when absent and ``download`` is set, fetch them once and look again."""
    found = _locate(dirs, files)
    if found is None and download:
        try:
            fetch()
        except (OSError, RuntimeError, ValueError) as exc:  # no network, failed checksum, bad archive
            raise DatasetNotFoundError(f"{_not_found(name, dirs, files, download)}\nDownload error: {exc}") from exc
        found = _locate(dirs, files)
    if found is None:
        raise DatasetNotFoundError(_not_found(name, dirs, files, download))
    return found


# ---- digits ---------------------------------------------------------------------------------------------


def _read_digits(root: Path, download: bool) -> RawDataset:
    """scikit-learn's bundled 8x8 digits (values 0..16) with a fixed stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.uint8)[:, None]  # (1797, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    # random_state is fixed on purpose: the split is part of the dataset's definition, not of a seed.
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=0)
    bundled = resources.files("sklearn.datasets") / "data" / "digits.csv.gz"
    sources = [Path(str(bundled))] if bundled.is_file() else []
    return RawDataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx], 16, 10, sources)


# ---- IDX (MNIST, Fashion-MNIST) --------------------------------------------------------------------------

_IDX_IMAGES, _IDX_LABELS = 2051, 2049
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


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


def _read_idx_split(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, H, W)`` uint8 and labels ``(N,)`` int64 from one pair of IDX files."""
    x = _parse_idx(images, _IDX_IMAGES, 3)[:, None]
    y = _parse_idx(labels, _IDX_LABELS, 1).astype(np.int64)
    if len(x) != len(y):
        raise DatasetError(f"{labels}: {len(y)} labels, expected {len(x)} to match {images}")
    return np.ascontiguousarray(x), y


_TRAIN_TEST = ({"train": True}, {"train": False})


def _torchvision_fetch(cls_name: str, root: Path, splits: Sequence[dict[str, Any]]) -> Callable[[], None]:
    """A closure that lets torchvision download dataset ``cls_name`` under ``root``, one call per split.

    torchvision is imported only when a download is actually needed.
    """

    def fetch() -> None:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, cls_name)
        # The returned objects are discarded: files are read back with this module's own parsers.
        for kwargs in splits:
            cls(str(root), download=True, **kwargs)

    return fetch


def _idx_reader(name: str, folder: str, cls_name: str, system_dirs: Callable[[], list[Path]]) -> Reader:
    """A reader for an MNIST-like dataset; ``system_dirs`` is evaluated per call so tests can patch it."""

    def read(root: Path, download: bool) -> RawDataset:
        dirs = [root / cls_name / "raw", root / folder, root, *system_dirs()]
        fetch = _torchvision_fetch(cls_name, root, _TRAIN_TEST)
        paths = _find_or_fetch(name, dirs, [_file_choices(f) for f in _IDX_FILES], download, fetch)
        train_x, train_y = _read_idx_split(paths[0], paths[1])
        test_x, test_y = _read_idx_split(paths[2], paths[3])
        return RawDataset(train_x, train_y, test_x, test_y, 255, 10, paths)

    return read


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


def _read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
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


def _cifar_reader(
    name: str, folder: str, train_files: tuple[str, ...], test_file: str, label_key: str, cls_name: str,
    num_classes: int,
) -> Reader:
    def read(root: Path, download: bool) -> RawDataset:
        dirs = [root / folder, root]
        fetch = _torchvision_fetch(cls_name, root, _TRAIN_TEST)
        paths = _find_or_fetch(name, dirs, [(f,) for f in (*train_files, test_file)], download, fetch)
        train = [_read_cifar_batch(p, label_key) for p in paths[:-1]]
        test_x, test_y = _read_cifar_batch(paths[-1], label_key)
        train_x = np.concatenate([x for x, _ in train])
        train_y = np.concatenate([y for _, y in train])
        return RawDataset(train_x, train_y, test_x, test_y, 255, num_classes, paths)

    return read


# ---- SVHN -------------------------------------------------------------------------------------------------


def _read_svhn_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def _read_svhn(root: Path, download: bool) -> RawDataset:
    files = ["train_32x32.mat", "test_32x32.mat"]
    fetch = _torchvision_fetch("SVHN", root, ({"split": "train"}, {"split": "test"}))
    paths = _find_or_fetch("svhn", [root, root / "svhn"], [(f,) for f in files], download, fetch)
    train_x, train_y = _read_svhn_split(paths[0])
    test_x, test_y = _read_svhn_split(paths[1])
    return RawDataset(train_x, train_y, test_x, test_y, 255, 10, paths)


def _debian_fashion_dirs() -> list[Path]:
    return [DEBIAN_FASHION_MNIST_DIR]


def _no_system_dirs() -> list[Path]:
    return []


_CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))

READERS: dict[str, Reader] = {
    "digits": _read_digits,
    "fashion_mnist": _idx_reader("fashion_mnist", "fashion-mnist", "FashionMNIST", _debian_fashion_dirs),
    "mnist": _idx_reader("mnist", "mnist", "MNIST", _no_system_dirs),
    "cifar10": _cifar_reader("cifar10", "cifar-10-batches-py", _CIFAR10_TRAIN, "test_batch", "labels",
                             "CIFAR10", 10),
    "cifar100": _cifar_reader("cifar100", "cifar-100-python", ("train",), "test", "fine_labels",
                              "CIFAR100", 100),
    "svhn": _read_svhn,
}
"""Dataset name -> reader of its raw files."""


_DATASET_ID = re.compile(r"(?P<base>[a-z0-9_]+?)(?:-noise(?P<percent>\d+))?")


def parse_dataset_id(dataset: str) -> tuple[str, float]:
    """``"fashion_mnist-noise20"`` -> ``("fashion_mnist", 0.2)``: a registered dataset and the fraction of its
    training labels replaced by random ones (paper App. E.1); a plain name has no label noise."""
    match = _DATASET_ID.fullmatch(dataset)
    if match is None or match["base"] not in READERS:
        raise ValueError(
            f"unknown dataset {dataset!r}; use one of {', '.join(sorted(READERS))}, optionally with a label-noise "
            "suffix '-noise<percent>' (e.g. fashion_mnist-noise20)"
        )
    percent = int(match["percent"] or 0)
    if percent > 100:
        raise ValueError(f"dataset {dataset!r}: label noise {percent}% is more than 100%")
    return match["base"], percent / 100


def randomise_labels(labels: Tensor, fraction: float, num_classes: int, seed: int) -> Tensor:
    """A copy of ``labels`` (shape ``(N,)``) where ``round(fraction * N)`` examples, chosen uniformly, get a label
    drawn uniformly from all classes (so about ``1/num_classes`` of them keep their true label, as in Zhang et al.
    2017's random-label experiments)."""
    generator = seeding.generator(seed, seeding.LABEL_NOISE)
    count = round(fraction * len(labels))
    chosen = torch.randperm(len(labels), generator=generator)[:count]
    noisy = labels.clone()
    noisy[chosen] = torch.randint(num_classes, (count,), generator=generator, dtype=labels.dtype)
    return noisy


def read_raw(name: str, root: PathLike, download: bool = False) -> RawDataset:
    """Read the raw splits of dataset ``name`` from ``root``, checking that they are consistent."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; supported: {', '.join(sorted(READERS))}")
    # Absolute, so that error messages and recorded sources do not depend on the working directory.
    raw = READERS[name](Path(root).absolute(), download)
    _check_raw(name, raw)
    return raw


def _check_raw(name: str, raw: RawDataset) -> None:
    """Both splits share one image shape; labels are in ``[0, num_classes)``."""
    where = ", ".join(str(p) for p in raw.sources) or name
    if raw.train_x.shape[1:] != raw.test_x.shape[1:]:
        raise DatasetError(
            f"{where}: train images of shape {raw.train_x.shape[1:]} differ from test {raw.test_x.shape[1:]}"
        )
    for labels in (raw.train_y, raw.test_y):
        if labels.size and (labels.min() < 0 or labels.max() >= raw.num_classes):
            raise DatasetError(f"{where}: labels outside [0, {raw.num_classes}) for dataset {name!r}")


# --------------------------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------------------------


def resize(x: Tensor, size: int, scale: int) -> Tensor:
    """Bilinear, antialiased resize of uint8 ``(N, C, H, W)`` to ``(N, C, size, size)``, back to uint8."""
    if x.shape[-2:] == (size, size):
        return x.contiguous()
    out = torch.empty((*x.shape[:2], size, size), dtype=torch.uint8)
    for start in range(0, len(x), _CHUNK):
        chunk = x[start:start + _CHUNK].float()
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
        # Rounding and clamping keep the values a valid image of the original range.
        out[start:start + _CHUNK] = resized.round().clamp(0, scale).to(torch.uint8)
    return out


def stratified_subset(labels: Tensor, n: int, seed: int) -> Tensor:
    """Sorted int64 indices of ``n`` examples whose class proportions match ``labels`` (shape ``(N,)``).

    Each class gets ``floor(n * share)`` examples; the leftover ones go to the classes with the largest
    remainders (ties to the smaller class index); the result depends only on ``labels``, ``n``, ``seed``.
    """
    total = len(labels)
    if not 1 <= n <= total:
        raise ValueError(f"train_subset={n} must be between 1 and the {total} training examples")
    y = labels.numpy()
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / total
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((classes, -(exact - quota)))
    quota[order[: n - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=int(q), replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return torch.from_numpy(np.sort(np.concatenate(chosen))).long()


def channel_stats(x: Tensor, scale: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and population std of ``x / scale`` over uint8 ``(N, C, H, W)`` (two float64 passes).

    A constant channel gets std 1 so that normalising it leaves zeros instead of dividing by zero.
    """
    count = x.numel() // x.shape[1]
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    for start in range(0, len(x), _CHUNK):
        total += (x[start:start + _CHUNK].double() / scale).sum(dim=(0, 2, 3))
    mean = total / count
    squares = torch.zeros_like(mean)
    for start in range(0, len(x), _CHUNK):
        centred = x[start:start + _CHUNK].double() / scale - mean.view(1, -1, 1, 1)
        squares += centred.square().sum(dim=(0, 2, 3))
    std = (squares / count).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.tolist(), std.tolist()


def describe_source(path: Path) -> dict[str, Any]:
    """``{path, size, sha256}`` of one raw file, so a prepared dataset names exactly what it came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "size": path.stat().st_size, "sha256": digest.hexdigest()}


def _as_tensor(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory, copied first when it is read-only (e.g. parsed from bytes)."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def prepare_dataset(
    name: str,
    *,
    root: PathLike,
    download: bool = False,
    image_size: int | None = None,
    train_subset: int | None = None,
    subset_seed: int = 0,
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read dataset ``name`` and return ``(tensors, meta)`` ready for :func:`write_prepared`.

    ``name`` may carry a label-noise suffix (see :func:`parse_dataset_id`): that fraction of the (subset)
    training labels is randomised with ``subset_seed``; test labels stay clean.

    ``tensors``: ``train_x``/``test_x`` contiguous uint8 ``(N, C, H, W)``, ``train_y``/``test_y`` int64 (N,).
    ``meta``: name, num_classes, input_shape ``[C, H, W]``, scale, per-channel mean/std of ``x / scale`` over
    the (subset) training split, sizes, the options used and the source files.
    """
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size={image_size} must be a positive number of pixels")
    base, label_noise = parse_dataset_id(name)
    raw = read_raw(base, root, download)
    train_x, train_y = _as_tensor(raw.train_x), _as_tensor(raw.train_y)
    if train_subset is not None:
        keep = stratified_subset(train_y, train_subset, subset_seed)
        train_x, train_y = train_x[keep], train_y[keep]
    if label_noise > 0:
        train_y = randomise_labels(train_y, label_noise, raw.num_classes, subset_seed)
    test_x, test_y = _as_tensor(raw.test_x), _as_tensor(raw.test_y)
    if image_size is not None:
        train_x, test_x = resize(train_x, image_size, raw.scale), resize(test_x, image_size, raw.scale)
    tensors = {
        "train_x": train_x.contiguous(), "train_y": train_y.contiguous(),
        "test_x": test_x.contiguous(), "test_y": test_y.contiguous(),
    }
    mean, std = channel_stats(tensors["train_x"], raw.scale)
    meta = {
        "name": name, "num_classes": raw.num_classes, "input_shape": list(train_x.shape[1:]),
        "scale": raw.scale, "mean": mean, "std": std, "n_train": len(train_y), "n_test": len(test_y),
        "image_size": image_size, "train_subset": train_subset, "subset_seed": subset_seed,
        "base": base, "label_noise": label_noise, "sources": [describe_source(p) for p in raw.sources],
    }
    return tensors, meta


def write_prepared(path: PathLike, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` as safetensors at ``path``; ``meta`` + checksum + provenance as its JSON sidecar."""
    _check_tensors(Path(path), tensors, meta)
    digest = save_tensors(path, {key: tensors[key] for key in TENSOR_KEYS})
    write_json(sidecar_path(path), {**meta, "sha256": digest, "provenance": provenance()})


# --------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == is ambiguous for tensors
class Dataset:
    """Model-ready splits: ``*_x`` float32 ``(N, C, H, W)`` normalised per channel, ``*_y`` int64 ``(N,)``."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    input_shape: tuple[int, int, int]
    name: str

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of split ``"train"`` or ``"test"``."""
        splits = {"train": (self.train_x, self.train_y), "test": (self.test_x, self.test_y)}
        if name not in splits:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(splits)}")
        return splits[name]


_META_KEYS = ("name", "num_classes", "input_shape", "scale", "mean", "std")


def _check_tensors(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Keys, dtypes and shapes as :func:`prepare_dataset` produces them, consistent with ``meta``."""
    for key in _META_KEYS:
        if key not in meta:
            raise DatasetError(f"{path}: metadata key {key!r} missing from the sidecar")
    shape = tuple(meta["input_shape"])
    for split in ("train", "test"):
        x, y = tensors.get(f"{split}_x"), tensors.get(f"{split}_y")
        if x is None or x.dtype != torch.uint8 or tuple(x.shape[1:]) != shape:
            raise DatasetError(f"{path}: key '{split}_x' must be a uint8 tensor of shape (N, *{list(shape)})")
        if y is None or y.dtype != torch.int64 or y.shape != (len(x),):
            raise DatasetError(f"{path}: key '{split}_y' must be an int64 tensor of shape ({len(x)},)")
    if len(meta["mean"]) != shape[0] or len(meta["std"]) != shape[0]:
        raise DatasetError(f"{path}: metadata 'mean'/'std' must have one value per channel ({shape[0]})")


def _normalise(x: Tensor, scale: float, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 ``(N, C, H, W)`` -> float32 ``((x / scale) - mean) / std`` on the device of ``x``."""
    return (x.float() / scale - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def load_dataset(path: PathLike, device: torch.device | str = "cpu") -> Dataset:
    """Load a file written by :func:`write_prepared`, verifying checksum, keys, dtypes and shapes."""
    path = Path(path)
    meta = read_json(sidecar_path(path))
    if "sha256" not in meta:
        raise DatasetError(f"{sidecar_path(path)}: metadata key 'sha256' missing; rerun the preparation job")
    tensors = load_tensors(path, meta["sha256"])
    _check_tensors(path, tensors, meta)
    dev = torch.device(device)
    mean = torch.tensor(meta["mean"], dtype=torch.float32, device=dev)
    std = torch.tensor(meta["std"], dtype=torch.float32, device=dev)
    scale = float(meta["scale"])
    xs = {key: _normalise(tensors[key].to(dev), scale, mean, std) for key in ("train_x", "test_x")}
    c, h, w = (int(v) for v in meta["input_shape"])
    return Dataset(
        train_x=xs["train_x"], train_y=tensors["train_y"].to(dev), test_x=xs["test_x"],
        test_y=tensors["test_y"].to(dev), num_classes=int(meta["num_classes"]), input_shape=(c, h, w),
        name=str(meta["name"]),
    )
