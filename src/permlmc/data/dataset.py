"""Model-ready datasets: :func:`load_dataset` verifies a file written by :func:`permlmc.data.prepare.write_prepared`
and returns float32 normalised tensors in a :class:`Dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from permlmc.artifacts.files import load_tensors, read_json, sidecar_path
from permlmc.data.formats import DatasetError
from permlmc.data.readers import PathLike

TENSOR_KEYS = ("train_x", "train_y", "test_x", "test_y")


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


def check_tensors(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Keys, dtypes and shapes as :func:`permlmc.data.prepare.prepare_dataset` produces them, consistent with
    ``meta``."""
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
    check_tensors(path, tensors, meta)
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
