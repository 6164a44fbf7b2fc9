"""Dataset readers, preparation and loading, on tiny synthetic files in every supported layout."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.io import savemat

from permlmc.artifacts.files import ArtifactError, load_tensors, read_json, save_tensors, sidecar_path, write_json
from permlmc.data import readers as data
from permlmc.data.dataset import load_dataset
from permlmc.data.formats import DatasetError
from permlmc.data.prepare import prepare_dataset, stratified_subset, write_prepared
from permlmc.data.readers import READERS, DatasetNotFoundError

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


# ---- helpers -------------------------------------------------------------------------------------


def idx_images(images: np.ndarray) -> bytes:
    """IDX bytes for uint8 images (N, H, W)."""
    return struct.pack(">iIII", 2051, *images.shape) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">iI", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def write_idx_set(
    directory: Path, n_train: int, n_test: int, gz: bool, size: int = 6
) -> dict[str, np.ndarray]:
    """The four IDX files of a tiny MNIST-like dataset; returns the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n_train)
    arrays: dict[str, np.ndarray] = {
        "train_x": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train_y": np.arange(n_train) % 10,
        "test_x": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "test_y": np.arange(n_test) % 10,
    }
    contents = [idx_images(arrays["train_x"]), idx_labels(arrays["train_y"]),
                idx_images(arrays["test_x"]), idx_labels(arrays["test_y"])]
    for name, content in zip(IDX_NAMES, contents, strict=True):
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)
    return arrays


@pytest.fixture
def no_debian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the system Fashion-MNIST directory at an empty path so only test files can be found."""
    absent = tmp_path / "no-debian-package"
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", absent)
    return absent


def cifar_batch(n: int, seed: int, label_key: str, bytes_keys: bool) -> dict[Any, Any]:
    rng = np.random.default_rng(seed)
    batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: [i % 10 for i in range(n)],
             "batch_label": "synthetic"}
    return {k.encode(): v for k, v in batch.items()} if bytes_keys else batch


def write_pickle(path: Path, payload: Any, protocol: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(payload, protocol=protocol))


# ---- registry ------------------------------------------------------------------------------------


def test_registry_names_and_unknown_name(tmp_path: Path) -> None:
    assert set(READERS) == {"digits", "fashion_mnist", "mnist", "cifar10", "cifar100", "svhn"}
    with pytest.raises(ValueError, match="'imagenet'") as info:
        prepare_dataset("imagenet", root=tmp_path)
    for name in READERS:
        assert name in str(info.value)


# ---- digits --------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_meta(tmp_path: Path) -> None:
    tensors, meta = prepare_dataset("digits", root=tmp_path)
    assert tensors["train_x"].shape == (1347, 1, 8, 8) and tensors["test_x"].shape == (450, 1, 8, 8)
    assert tensors["train_x"].dtype == tensors["test_x"].dtype == torch.uint8
    assert tensors["train_y"].dtype == tensors["test_y"].dtype == torch.int64
    assert all(t.is_contiguous() for t in tensors.values())
    assert int(tensors["train_x"].max()) == 16
    assert meta["scale"] == 16 and meta["num_classes"] == 10 and meta["input_shape"] == [1, 8, 8]
    assert (meta["n_train"], meta["n_test"]) == (1347, 450)
    assert len(meta["mean"]) == len(meta["std"]) == 1
    assert meta["mean"][0] == pytest.approx(float(tensors["train_x"].double().mean()) / 16)


def test_digits_split_is_fixed_and_stratified(tmp_path: Path) -> None:
    first, _ = prepare_dataset("digits", root=tmp_path)
    second, _ = prepare_dataset("digits", root=tmp_path)
    for key in first:
        assert torch.equal(first[key], second[key])
    train_counts = torch.bincount(first["train_y"], minlength=10)
    test_counts = torch.bincount(first["test_y"], minlength=10)
    assert bool((train_counts > 0).all()) and bool((test_counts > 0).all())
    # stratified: each class's test share is the overall 25 % up to rounding
    share = test_counts.double() / (train_counts + test_counts).double()
    assert bool(((share - 0.25).abs() < 0.01).all())


# ---- IDX: Fashion-MNIST and MNIST ----------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("layout", ["FashionMNIST/raw", "fashion-mnist", "."])
def test_fashion_mnist_layouts(tmp_path: Path, no_debian: Path, layout: str, gz: bool) -> None:
    written = write_idx_set(tmp_path / layout, 12, 7, gz)
    tensors, meta = prepare_dataset("fashion_mnist", root=tmp_path)
    assert tensors["train_x"].shape == (12, 1, 6, 6) and tensors["test_x"].shape == (7, 1, 6, 6)
    assert np.array_equal(tensors["train_x"][:, 0].numpy(), written["train_x"])
    assert np.array_equal(tensors["test_y"].numpy(), written["test_y"])
    assert tensors["train_y"].dtype == torch.int64
    assert meta["scale"] == 255 and meta["num_classes"] == 10
    assert [Path(s["path"]).parent for s in meta["sources"]] == [tmp_path / layout] * 4
    assert all(len(s["sha256"]) == 64 for s in meta["sources"])


def test_mnist_reads_torchvision_layout(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "MNIST" / "raw", 10, 5, gz=True)
    tensors, meta = prepare_dataset("mnist", root=tmp_path)
    assert tensors["train_x"].shape == (10, 1, 6, 6) and meta["name"] == "mnist"


def test_torchvision_layout_is_searched_before_flat_dirs(tmp_path: Path, no_debian: Path) -> None:
    write_idx_set(tmp_path, 30, 3, gz=False)
    write_idx_set(tmp_path / "fashion-mnist", 25, 3, gz=False)
    write_idx_set(tmp_path / "FashionMNIST" / "raw", 20, 3, gz=True)
    tensors, meta = prepare_dataset("fashion_mnist", root=tmp_path)
    assert len(tensors["train_y"]) == 20
    assert all("FashionMNIST" in s["path"] for s in meta["sources"])


def test_root_dirs_are_searched_before_the_debian_package(tmp_path: Path) -> None:
    # The system directory is left as is: files under root must win even where the package is installed.
    write_idx_set(tmp_path / "fashion-mnist", 11, 4, gz=True)
    tensors, meta = prepare_dataset("fashion_mnist", root=tmp_path)
    assert len(tensors["train_y"]) == 11
    assert all(s["path"].startswith(str(tmp_path)) for s in meta["sources"])


def test_extracted_file_is_preferred_and_gz_mixes_with_plain(tmp_path: Path, no_debian: Path) -> None:
    directory = tmp_path / "fashion-mnist"
    write_idx_set(directory, 9, 4, gz=True)
    (directory / "train-labels-idx1-ubyte").write_bytes(gzip.decompress(
        (directory / "train-labels-idx1-ubyte.gz").read_bytes()))
    _, meta = prepare_dataset("fashion_mnist", root=tmp_path)
    assert [Path(s["path"]).name for s in meta["sources"]] == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"]


def corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def corrupt_magic(path: Path) -> None:
    content = path.read_bytes()
    path.write_bytes(struct.pack(">i", 2050) + content[4:])


def corrupt_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:6])


@pytest.mark.parametrize("corrupt, message", [
    (corrupt_truncate, "expected"), (corrupt_magic, "magic number 2050"), (corrupt_header, "too short"),
])
def test_malformed_idx_names_the_file(
    tmp_path: Path, no_debian: Path, corrupt: Callable[[Path], None], message: str
) -> None:
    write_idx_set(tmp_path, 8, 4, gz=False)
    target = tmp_path / "t10k-images-idx3-ubyte"
    corrupt(target)
    with pytest.raises(DatasetError, match=message) as info:
        prepare_dataset("fashion_mnist", root=tmp_path)
    assert str(target) in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path: Path, no_debian: Path) -> None:
    write_idx_set(tmp_path, 8, 4, gz=True)
    target = tmp_path / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:20])
    with pytest.raises(DatasetError, match="truncated") as info:
        prepare_dataset("fashion_mnist", root=tmp_path)
    assert str(target) in str(info.value)


def test_label_count_must_match_images(tmp_path: Path, no_debian: Path) -> None:
    write_idx_set(tmp_path, 8, 4, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_labels(np.arange(7) % 10))
    with pytest.raises(DatasetError, match="7 labels"):
        prepare_dataset("fashion_mnist", root=tmp_path)


def test_missing_files_list_searched_dirs_and_remedies(tmp_path: Path, no_debian: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        prepare_dataset("fashion_mnist", root=tmp_path)
    message = str(info.value)
    for directory in (tmp_path / "FashionMNIST" / "raw", tmp_path / "fashion-mnist", tmp_path, no_debian):
        assert str(directory) in message
    assert "data.root" in message and "download" in message and "dataset-fashion-mnist" in message
    assert isinstance(info.value, ArtifactError)


def test_download_fetches_then_reads(
    tmp_path: Path, no_debian: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_fetch(cls_name: str, root: Path, splits: object) -> Callable[[], None]:
        def fetch() -> None:
            calls.append(cls_name)
            write_idx_set(root / cls_name / "raw", 10, 5, gz=True)
        return fetch

    monkeypatch.setattr(data, "_torchvision_fetch", fake_fetch)
    tensors, _ = prepare_dataset("fashion_mnist", root=tmp_path, download=True)
    assert calls == ["FashionMNIST"] and len(tensors["train_y"]) == 10
    # already present: no second fetch
    prepare_dataset("fashion_mnist", root=tmp_path, download=True)
    assert calls == ["FashionMNIST"]


def test_failed_download_is_a_not_found_error(
    tmp_path: Path, no_debian: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline_fetch(cls_name: str, root: Path, splits: object) -> Callable[[], None]:
        def fetch() -> None:
            raise OSError("network unreachable")
        return fetch

    monkeypatch.setattr(data, "_torchvision_fetch", offline_fetch)
    with pytest.raises(DatasetNotFoundError, match="network unreachable") as info:
        prepare_dataset("svhn", root=tmp_path, download=True)
    assert str(tmp_path) in str(info.value) and "download was attempted" in str(info.value)


@pytest.mark.skipif(
    not DEBIAN_DIR.is_dir(), reason=f"{DEBIAN_DIR} absent (apt-get install dataset-fashion-mnist)"
)
def test_real_fashion_mnist_from_debian_package(tmp_path: Path) -> None:
    raw = data.read_raw("fashion_mnist", tmp_path)
    assert raw.train_x.shape == (60000, 1, 28, 28) and raw.test_x.shape == (10000, 1, 28, 28)
    assert raw.train_x.dtype == np.uint8 and raw.train_y.dtype == np.int64
    assert set(np.unique(raw.train_y)) == set(range(10)) == set(np.unique(raw.test_y))
    assert all(p.parent == DEBIAN_DIR for p in raw.sources)


# ---- CIFAR ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bytes_keys, protocol", [(True, 2), (False, 2), (True, 4), (False, 5)])
def test_cifar10_batches(tmp_path: Path, bytes_keys: bool, protocol: int) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    batches = {f"data_batch_{i}": cifar_batch(3, i, "labels", bytes_keys) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(4, 9, "labels", bytes_keys)
    for name, batch in batches.items():
        write_pickle(folder / name, batch, protocol)
    tensors, meta = prepare_dataset("cifar10", root=tmp_path)
    assert tensors["train_x"].shape == (15, 3, 32, 32) and tensors["test_x"].shape == (4, 3, 32, 32)
    assert meta["input_shape"] == [3, 32, 32] and meta["num_classes"] == 10 and len(meta["mean"]) == 3
    row = batches["data_batch_1"][b"data" if bytes_keys else "data"][1]
    # rows hold the red, green and blue 32x32 planes one after the other
    assert int(tensors["train_x"][1, 2, 3, 4]) == int(row[2 * 1024 + 3 * 32 + 4])
    assert tensors["test_y"].tolist() == [0, 1, 2, 3]


def py2_string(content: bytes) -> bytes:
    """Pickle opcode BINSTRING: a Python 2 ``str``, which a Python 3 reader decodes with its encoding."""
    return b"T" + struct.pack("<I", len(content)) + content


def py2_style_batch(rows: bytes, labels: list[int]) -> bytes:
    """A protocol-2 pickle shaped like the CIFAR files written by Python 2: str keys and array buffer.

    ``{'data': uint8 array (len(rows) // 3072, 3072), 'labels': labels}`` with the array rebuilt through
    ``numpy.core.multiarray._reconstruct`` and its raw bytes stored as a Python 2 string.
    """
    n = len(rows) // 3072
    dtype = (b"cnumpy\ndtype\n" + py2_string(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + py2_string(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + py2_string(b"b") + b"\x87R"
             + b"(K\x01" + b"M" + struct.pack("<H", n) + b"M\x00\x0c\x86" + dtype + b"\x89" + py2_string(rows)
             + b"tb")
    label_list = b"]" + b"".join(b"K" + bytes([label]) + b"a" for label in labels)
    return b"\x80\x02}(" + py2_string(b"data") + array + py2_string(b"labels") + label_list + b"u."


def test_cifar10_python2_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rows = bytes(range(256)) * 24  # two rows, every byte value (non-ASCII ones must survive decoding)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(py2_style_batch(rows, [3, 9]))
    tensors, _ = prepare_dataset("cifar10", root=tmp_path)
    assert tensors["train_x"].shape == (10, 3, 32, 32) and tensors["train_y"].tolist() == [3, 9] * 5
    assert bytes(tensors["test_x"].flatten().tolist()) == rows


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    for name, n in (("train", 5), ("test", 3)):
        batch = cifar_batch(n, n, "fine_labels", bytes_keys=False)
        batch["fine_labels"] = [99 - i for i in range(n)]
        batch["coarse_labels"] = [0] * n
        write_pickle(folder / name, batch, 2)
    tensors, meta = prepare_dataset("cifar100", root=tmp_path)
    assert meta["num_classes"] == 100 and tensors["train_y"].tolist() == [99, 98, 97, 96, 95]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_with_other_globals_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    marker = tmp_path / "executed"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_pickle(folder / name, cifar_batch(2, 0, "labels", bytes_keys=True), 2)
    write_pickle(folder / "data_batch_3", {b"data": _Exploit(marker), b"labels": [0]}, 2)
    with pytest.raises(DatasetError, match="system") as info:
        prepare_dataset("cifar10", root=tmp_path)
    assert str(folder / "data_batch_3") in str(info.value)
    assert not marker.exists()


def test_cifar_malformed_batches(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_pickle(folder / name, cifar_batch(2, 0, "labels", bytes_keys=True), 2)
    truncated = folder / "data_batch_2"
    truncated.write_bytes(truncated.read_bytes()[:50])
    with pytest.raises(DatasetError) as info:
        prepare_dataset("cifar10", root=tmp_path)
    assert str(truncated) in str(info.value)
    write_pickle(truncated, {"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, 4)
    with pytest.raises(DatasetError, match=r"\(N, 3072\)"):
        prepare_dataset("cifar10", root=tmp_path)
    write_pickle(truncated, {"data": np.zeros((2, 3072), np.uint8)}, 4)
    with pytest.raises(DatasetError, match="'labels' missing"):
        prepare_dataset("cifar10", root=tmp_path)


def test_cifar_missing_lists_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="data.download") as info:
        prepare_dataset("cifar10", root=tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)


# ---- SVHN ----------------------------------------------------------------------------------------


def test_svhn_mat_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 6), ("test", 4)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # 1..10, 10 is the digit 0
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
        arrays[split] = x
    tensors, meta = prepare_dataset("svhn", root=tmp_path)
    assert tensors["train_x"].shape == (6, 3, 32, 32) and tensors["test_x"].shape == (4, 3, 32, 32)
    assert int(tensors["train_x"][5, 1, 2, 3]) == int(arrays["train"][2, 3, 1, 5])
    assert tensors["train_y"].tolist() == [1, 2, 3, 4, 5, 6]
    assert tensors["test_y"].tolist() == [1, 2, 3, 4]
    savemat(tmp_path / "test_32x32.mat", {"X": arrays["test"], "y": np.full((4, 1), 10, np.uint8)})
    tensors, _ = prepare_dataset("svhn", root=tmp_path)
    assert tensors["test_y"].tolist() == [0, 0, 0, 0]


def test_svhn_bad_file(tmp_path: Path) -> None:
    savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1))})
    (tmp_path / "test_32x32.mat").write_bytes(b"not a MATLAB file at all" * 10)
    with pytest.raises(DatasetError) as info:
        prepare_dataset("svhn", root=tmp_path)
    assert "test_32x32.mat" in str(info.value)


# ---- resize and subsets --------------------------------------------------------------------------


def test_resize_changes_shape_and_keeps_uint8(tmp_path: Path) -> None:
    tensors, meta = prepare_dataset("digits", root=tmp_path, image_size=32)
    assert tensors["train_x"].shape == (1347, 1, 32, 32) and tensors["test_x"].shape == (450, 1, 32, 32)
    assert tensors["train_x"].dtype == torch.uint8 and int(tensors["train_x"].max()) <= 16
    assert meta["input_shape"] == [1, 32, 32] and meta["image_size"] == 32
    with pytest.raises(ValueError, match="image_size"):
        prepare_dataset("digits", root=tmp_path, image_size=0)


def test_train_subset_is_stratified_and_reproducible(tmp_path: Path) -> None:
    full, _ = prepare_dataset("digits", root=tmp_path)
    first, meta = prepare_dataset("digits", root=tmp_path, train_subset=100, subset_seed=3)
    again, _ = prepare_dataset("digits", root=tmp_path, train_subset=100, subset_seed=3)
    other, _ = prepare_dataset("digits", root=tmp_path, train_subset=100, subset_seed=4)
    assert len(first["train_y"]) == 100 and meta["n_train"] == 100 and meta["train_subset"] == 100
    assert torch.equal(first["train_x"], again["train_x"]) and torch.equal(first["train_y"], again["train_y"])
    assert not torch.equal(first["train_x"], other["train_x"])
    expected = torch.bincount(full["train_y"], minlength=10).double() * 100 / len(full["train_y"])
    assert bool(((torch.bincount(first["train_y"], minlength=10) - expected).abs() < 1).all())
    assert torch.equal(first["test_x"], full["test_x"])  # the test split is never subset


def test_stratified_subset_sizes_and_errors() -> None:
    labels = torch.tensor([0] * 7 + [1] * 2 + [2])
    idx = stratified_subset(labels, 5, seed=0)
    assert len(idx) == 5 and len(set(idx.tolist())) == 5 and torch.equal(idx, idx.sort().values)
    assert torch.bincount(labels[idx], minlength=3).tolist() == [4, 1, 0]
    assert stratified_subset(labels, 10, seed=1).tolist() == list(range(10))
    with pytest.raises(ValueError, match="11"):
        stratified_subset(labels, 11, seed=0)


def test_subset_larger_than_train_names_the_number(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="5000") as info:
        prepare_dataset("digits", root=tmp_path, train_subset=5000)
    assert "1347" in str(info.value)


# ---- write / load --------------------------------------------------------------------------------


@pytest.fixture
def prepared_digits(tmp_path: Path) -> Path:
    tensors, meta = prepare_dataset("digits", root=tmp_path)
    path = tmp_path / "prepared" / "digits.safetensors"
    write_prepared(path, tensors, meta)
    return path


def test_write_and_load_roundtrip(prepared_digits: Path) -> None:
    sidecar = read_json(sidecar_path(prepared_digits))
    assert len(sidecar["sha256"]) == 64 and "provenance" in sidecar and sidecar["name"] == "digits"
    dataset = load_dataset(prepared_digits)
    assert dataset.name == "digits" and dataset.num_classes == 10 and dataset.input_shape == (1, 8, 8)
    x, y = dataset.split("train")
    assert x.dtype == torch.float32 and x.shape == (1347, 1, 8, 8) and y.dtype == torch.int64
    assert dataset.split("test")[0].shape == (450, 1, 8, 8)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (x.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-5
    with pytest.raises(ValueError, match="'val'"):
        dataset.split("val")


def test_corrupted_file_is_rejected(prepared_digits: Path) -> None:
    content = bytearray(prepared_digits.read_bytes())
    content[-10] ^= 0xFF
    prepared_digits.write_bytes(bytes(content))
    with pytest.raises(ArtifactError) as info:
        load_dataset(prepared_digits)
    assert str(prepared_digits) in str(info.value)


def test_wrong_dtype_names_the_key(prepared_digits: Path) -> None:
    meta = read_json(sidecar_path(prepared_digits))
    tensors = load_tensors(prepared_digits)
    tensors["test_y"] = tensors["test_y"].float()
    meta["sha256"] = save_tensors(prepared_digits, tensors)
    write_json(sidecar_path(prepared_digits), meta)
    with pytest.raises(DatasetError, match="test_y") as info:
        load_dataset(prepared_digits)
    assert str(prepared_digits) in str(info.value)


def test_missing_sidecar_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_dataset(tmp_path / "absent.safetensors")


def test_dataset_shapes_are_known_for_every_reader_before_any_file_is_read() -> None:
    from permlmc.data.readers import READERS, SHAPES, prepared_shape

    assert set(SHAPES) == set(READERS)
    assert prepared_shape("digits") == ((1, 8, 8), 10)
    assert prepared_shape("cifar100-noise20", 16) == ((3, 16, 16), 100)
    raw = READERS["digits"](Path("unused"), False)  # bundled with scikit-learn
    assert (tuple(raw.train_x.shape[1:]), raw.num_classes) == SHAPES["digits"]
