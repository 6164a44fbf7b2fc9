"""Verbs that make datasets available: ``prepare-dataset`` (rule ``prepare_dataset``) and ``fetch-data`` (run by
``make data`` before a workflow, outside the DAG)."""

from __future__ import annotations

import argparse

from permlmc.cli.verb import Verb, optional_int
from permlmc.types import PathLike


def prepare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True)
    p.add_argument("--root", required=True, help="directory holding (or receiving) the raw files")
    p.add_argument("--download", action="store_true", help="let torchvision download missing files")
    p.add_argument("--image-size", type=optional_int, default=None)
    p.add_argument("--train-subset", type=optional_int, default=None)
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--out", required=True)


def run_prepare_dataset(
    name: str, root: PathLike, out: PathLike, *, download: bool, image_size: int | None, train_subset: int | None,
    subset_seed: int = 0,
) -> None:
    """Prepare dataset ``name`` (see :func:`permlmc.data.prepare.prepare_dataset`) and write it to ``out``."""
    from permlmc.data.prepare import prepare_dataset, write_prepared  # torch: only this verb of the module needs it

    tensors, meta = prepare_dataset(name, root=root, download=download, image_size=image_size,
                                    train_subset=train_subset, subset_seed=subset_seed)
    write_prepared(out, tensors, meta)


def fetch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--names", nargs="+", required=True, help="datasets, e.g. fashion_mnist digits-noise20")
    p.add_argument("--root", required=True, help="directory holding (or receiving) the raw files")


def run_fetch_data(names: list[str], root: PathLike) -> None:
    """Make the raw files of datasets ``names`` readable under ``root`` (:func:`permlmc.data.fetch.fetch_datasets`)."""
    from permlmc.data.fetch import fetch_datasets

    for name, how in fetch_datasets(names, root).items():
        print(f"{name}: {how}")


VERBS = {
    "prepare-dataset": Verb("Write a dataset as uint8 safetensors with normalisation statistics.",
                            prepare_arguments, run_prepare_dataset, device=False),
    "fetch-data": Verb("Make the raw files of datasets available (Debian's package or a download).",
                       fetch_arguments, run_fetch_data, tensors=False),
}
