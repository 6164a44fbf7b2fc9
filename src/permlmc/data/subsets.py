"""Fixed evaluation subsets of a dataset: which examples a search reads, which ones each interpolation curve is
measured on, and which training batches re-estimate BatchNorm statistics along the path. Each is drawn from its
own stream, ``seeding.generator(seed, EVAL_SUBSET, purpose)``, so the same examples serve every pair and alpha.
"""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor

from permlmc import seeding
from permlmc.data.dataset import Dataset


class Purpose(IntEnum):
    """What a subset is for; the value is part of its random stream (changing one changes the subset)."""

    SEARCH_EXAMPLES = 0  # the training examples a data-based search reads (SA energy, activations)
    TRAIN_CURVE = 1  # the training examples of each interpolation curve
    TEST_CURVE = 2  # the test examples of each interpolation curve (and of the ensembles' table)
    BN_STATISTICS = 3  # the training batches of BatchNorm `reset` / `repair`


def fixed_subset(n_total: int, n: int | None, seed: int, purpose: Purpose) -> Tensor:
    """Sorted indices of a fixed random subset of ``n`` of ``n_total`` examples (all, in order, when ``n`` is None
    or not smaller than ``n_total``)."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    generator = seeding.generator(seed, seeding.EVAL_SUBSET, int(purpose))
    return torch.randperm(n_total, generator=generator)[:n].sort().values


def curve_splits(
    data: Dataset, train_examples: int | None, test_examples: int | None
) -> dict[str, tuple[Tensor, Tensor]]:
    """``{"train": (x, y), "test": (x, y)}``: the examples every interpolation curve of ``data`` is measured on."""
    return {"train": curve_examples(data, "train", train_examples), "test": curve_examples(data, "test", test_examples)}


def curve_examples(data: Dataset, split: str, n: int | None) -> tuple[Tensor, Tensor]:
    """The ``n`` examples of ``split`` every interpolation curve is measured on (all when ``n`` is None)."""
    x, y = data.split(split)
    purpose = Purpose.TRAIN_CURVE if split == "train" else Purpose.TEST_CURVE
    idx = fixed_subset(len(x), n, 0, purpose).to(x.device)
    return x[idx], y[idx]


def statistics_batches(data: Dataset, batches: int, batch_size: int) -> list[Tensor]:
    """Fixed training batches ``(batch_size, C, H, W)`` for BatchNorm ``reset``/``repair``, the same for every
    alpha and every pair."""
    x, _ = data.split("train")
    idx = fixed_subset(len(x), batches * batch_size, 0, Purpose.BN_STATISTICS).to(x.device)
    return list(x[idx].split(batch_size))
