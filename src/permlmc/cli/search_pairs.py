"""``search-pairs`` (rule ``search_pairs``): every pair of one network with one method, in one process. A pair's
files: its permutation (``permutation.safetensors`` + ``.json``, :mod:`permlmc.cli.search_pair`), its curves
(``curve.csv``) and their Eq. 1 barriers (``barrier.json``, :mod:`permlmc.cli.interpolate_pair`)."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from permlmc.artifacts.checkpoints import load_checkpoint, load_checkpoints
from permlmc.cli.interpolate_pair import interpolate_pair
from permlmc.cli.progress import Bar
from permlmc.cli.search_pair import search_and_save
from permlmc.cli.verb import (
    Verb,
    curve_options,
    data_option,
    json_objects,
    method_arguments,
    residual_options,
    search_examples_option,
)
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU
from permlmc.interpolation.setup import curve_setup
from permlmc.models import permutation_spec
from permlmc.permutation import apply_permutation
from permlmc.search.inputs import search_data
from permlmc.search.pair import streams_left
from permlmc.types import PathLike

log = logging.getLogger("permlmc")


def pairs_arguments(p: argparse.ArgumentParser) -> None:
    method_arguments(p)
    data_option(p)
    p.add_argument("--pairs", type=json_objects, required=True,
                   help="JSON list of {kind, pair, model_a, model_b, out[, truth: [PERM_A, PERM_B]]}: each pair's "
                        "files go to its directory `out`")
    search_examples_option(p)
    curve_options(p)
    residual_options(p)


PAIR_KEYS = {"kind", "pair", "model_a", "model_b", "out", "truth"}
"""Keys of one item of ``run_search_pairs``'s ``pairs``; ``truth`` (S' pairs: the copies' planted permutations)
is optional."""


def run_search_pairs(
    method: str, pairs: Sequence[Mapping[str, Any]], data_path: PathLike, *, options: dict[str, Any], seed: int,
    search_examples: int | None, alphas: Sequence[float], train_examples: int | None, test_examples: int | None,
    labels: dict[str, Any], residual: str = "full", bn_modes: Sequence[str] = ("interpolate",),
    bn_batches: int = 10, bn_batch_size: int = 256, expect: str | None = None, device: torch.device = CPU,
    stacked: bool = False, temperature_scaled: bool = False,
) -> None:
    """Search and interpolate every pair of one network with one method, in one process (``python -m permlmc
    search-pairs``). Each pair (``kind``, ``pair``, ``model_a``, ``model_b``, optional ``truth``) gets, under its
    directory ``out``, the files of :func:`search_and_save` (``permutation.safetensors`` + ``.json``) and of
    :func:`interpolate_pair` (``curve.csv``, ``barrier.json``), identical to what one job per pair would write.
    The dataset, the search's data and the curve setup are built once."""
    required = sorted(PAIR_KEYS - {"truth"})
    for number, item in enumerate(pairs, start=1):
        if unknown := sorted(set(item) - PAIR_KEYS):
            raise ValueError(f"--pairs item {number} has unknown keys {unknown}; the keys are {sorted(PAIR_KEYS)}")
        if missing := sorted(set(required) - set(item)):
            raise ValueError(f"--pairs item {number} lacks {missing}; each item needs {required}")
        if "truth" in item and not (isinstance(item["truth"], list) and len(item["truth"]) == 2):
            raise ValueError(f"--pairs item {number}: 'truth' must list two permutation files (A's and B's), "
                             f"got {item['truth']!r}")
    if not pairs:
        raise ValueError("--pairs is empty: give at least one pair")
    arch, _, _ = load_checkpoint(pairs[0]["model_a"], expect_name=expect)
    spec = permutation_spec(arch, residual)
    data = load_dataset(data_path, device=device)
    searched = search_data(method, arch, spec, data, search_examples, seed, device)
    setup = curve_setup(arch, data, alphas=alphas, train_examples=train_examples, test_examples=test_examples,
                        bn_modes=bn_modes, bn_batches=bn_batches, bn_batch_size=bn_batch_size, stacked=stacked,
                        device=device, temperature_scaled=temperature_scaled)
    bar = Bar(len(pairs), f"{method}: pairs searched and interpolated", "pair")
    for item in pairs:
        out = Path(item["out"])
        _, (a, b) = load_checkpoints([item["model_a"], item["model_b"]], expect=arch)
        truth = (item["truth"][0], item["truth"][1]) if item.get("truth") else None
        start = time.perf_counter()
        perm = search_and_save(method, spec, a, b, searched, out / "permutation.safetensors", options=options,
                           seed=seed, residual=residual, sources=(item["model_a"], item["model_b"]),
                           truth=truth, device=device, left=streams_left(arch, options))
        interpolate_pair(setup, a, apply_permutation(spec, perm, b), out / "barrier.json", out / "curve.csv",
                         labels={**labels, "kind": item["kind"], "pair": item["pair"]}, residual=residual,
                         sources=(item["model_a"], item["model_b"], out / "permutation.safetensors"), device=device)
        log.info("%s pair %s: %s and its curves in %.2f s", item["kind"], item["pair"], method,
                 time.perf_counter() - start)
        bar.advance()
    bar.close()


VERBS = {
    "search-pairs": Verb("Search and interpolate every pair of one network with one method, in one process: each "
                         "pair's permutation, curve and Eq. 1 barriers.", pairs_arguments, run_search_pairs),
}
