"""Raw datasets: a registry of readers that find the files of one dataset (or download them) and return uint8
images ``(N, C, H, W)`` and int64 labels ``(N,)``. The file formats themselves are parsed in
:mod:`permlmc.data.formats`; nothing here needs torch, so fetching data starts fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from permlmc.artifacts.files import ArtifactError
from permlmc.data.formats import DatasetError, read_cifar_batch, read_idx_split, read_svhn_split
from permlmc.types import PathLike

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files.

Module-level so that tests can point it elsewhere; searched after every directory under ``root``.
"""

class DatasetNotFoundError(ArtifactError):
    """The files of a dataset are in none of the searched directories (and were not downloaded)."""


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

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


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
        train_x, train_y = read_idx_split(paths[0], paths[1])
        test_x, test_y = read_idx_split(paths[2], paths[3])
        return RawDataset(train_x, train_y, test_x, test_y, 255, 10, paths)

    return read


# ---- CIFAR ----------------------------------------------------------------------------------------------

def _cifar_reader(
    name: str, folder: str, train_files: tuple[str, ...], test_file: str, label_key: str, cls_name: str,
    num_classes: int,
) -> Reader:
    def read(root: Path, download: bool) -> RawDataset:
        dirs = [root / folder, root]
        fetch = _torchvision_fetch(cls_name, root, _TRAIN_TEST)
        paths = _find_or_fetch(name, dirs, [(f,) for f in (*train_files, test_file)], download, fetch)
        train = [read_cifar_batch(p, label_key) for p in paths[:-1]]
        test_x, test_y = read_cifar_batch(paths[-1], label_key)
        train_x = np.concatenate([x for x, _ in train])
        train_y = np.concatenate([y for _, y in train])
        return RawDataset(train_x, train_y, test_x, test_y, 255, num_classes, paths)

    return read


# ---- SVHN -------------------------------------------------------------------------------------------------


def _read_svhn(root: Path, download: bool) -> RawDataset:
    files = ["train_32x32.mat", "test_32x32.mat"]
    fetch = _torchvision_fetch("SVHN", root, ({"split": "train"}, {"split": "test"}))
    paths = _find_or_fetch("svhn", [root, root / "svhn"], [(f,) for f in files], download, fetch)
    train_x, train_y = read_svhn_split(paths[0])
    test_x, test_y = read_svhn_split(paths[1])
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

SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 8, 8), 10), "fashion_mnist": ((1, 28, 28), 10), "mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100), "svhn": ((3, 32, 32), 10),
}
"""Dataset name -> (image shape ``(C, H, W)``, classes) of its raw files, known before any file is read."""


def prepared_shape(dataset: str, image_size: int | None = None) -> tuple[tuple[int, int, int], int]:
    """``(input_shape, classes)`` of dataset ``dataset`` (label-noise suffix allowed) prepared at ``image_size``."""
    (channels, height, width), classes = SHAPES[parse_dataset_id(dataset)[0]]
    size = (height, width) if image_size is None else (image_size, image_size)
    return (channels, *size), classes


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
