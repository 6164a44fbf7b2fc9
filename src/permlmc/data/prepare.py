"""Prepared datasets: raw splits resized, subset (class-stratified) and given label noise, with per-channel
statistics; :func:`write_prepared` stores them as safetensors plus a JSON sidecar with checksum and provenance.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from permlmc import seeding
from permlmc.artifacts.files import save_tensors, sidecar_path, write_json
from permlmc.artifacts.provenance import provenance
from permlmc.data.dataset import TENSOR_KEYS, check_tensors
from permlmc.data.readers import PathLike, parse_dataset_id, read_raw

_CHUNK = 4096  # examples per step when resizing or reducing, to bound float memory on large datasets


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
    check_tensors(Path(path), tensors, meta)
    digest = save_tensors(path, {key: tensors[key] for key in TENSOR_KEYS})
    write_json(sidecar_path(path), {**meta, "sha256": digest, "provenance": provenance()})
