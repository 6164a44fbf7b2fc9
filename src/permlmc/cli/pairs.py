"""The pair verbs: ``search-pairs`` (rule ``search_pairs``: every pair of one network with one method, in one
process) and, for one pair by hand, ``search-pair`` and ``interpolate-pair``. A pair's files: its permutation
(``permutation.safetensors`` + ``.json``), its curves (``curve.csv``) and their Eq. 1 barriers (``barrier.json``).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from permlmc.artifacts.checkpoints import load_checkpoint, load_checkpoints, load_permutation, save_permutation
from permlmc.artifacts.files import read_json
from permlmc.artifacts.pair_result import CurveRow, write_pair_result
from permlmc.artifacts.provenance import provenance
from permlmc.cli.progress import Bar
from permlmc.cli.verb import (
    Verb,
    curve_options,
    json_objects,
    method_arguments,
    residual_options,
    search_examples_option,
)
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU, to_device
from permlmc.interpolation.barriers import pair_barriers
from permlmc.interpolation.setup import CurveSetup, curve_setup
from permlmc.models import permutation_spec
from permlmc.permutation import (
    PermutationSpec,
    agreement,
    apply_permutation,
    planted_alignment,
)
from permlmc.search import SearchData
from permlmc.search.inputs import search_data
from permlmc.search.pair import search_pair, streams_left
from permlmc.types import PathLike, Permutation, StateDict

log = logging.getLogger("permlmc")


def _method_and_data(p: argparse.ArgumentParser) -> None:
    method_arguments(p)
    p.add_argument("--data", dest="data_path", metavar="DATA", required=True)


def search_and_save(
    method: str, spec: PermutationSpec, a: StateDict, b: StateDict, data: SearchData | None, out: PathLike, *,
    options: dict[str, Any], seed: int, residual: str, sources: tuple[PathLike, PathLike],
    truth: tuple[PathLike, PathLike] | None = None, device: torch.device = CPU, left: Sequence[str] = (),
) -> Permutation:
    """:func:`permlmc.search.pair.search_pair` of B towards A, written to ``out`` with its sidecar (method, options,
    wall time, the search's log). ``truth``: the planted permutations of two S' copies (A and B); the sidecar then
    records the fraction of units the search maps back to their true place."""
    if data is not None:  # searches that run the network work where its data are; weight-only ones on the CPU
        a, b = to_device(a, device), to_device(b, device)
    trace: list[dict[str, Any]] = []
    steps = int(options.get("steps", 0)) if method == "sa" else 0
    bar = Bar(steps, f"{method} search", "step") if steps else None

    def progress(event: dict[str, Any]) -> None:
        trace.append(event)
        if bar is not None and event.get("event") == "step":
            bar.reach(int(event["step"]), energy=f"{event['energy']:.4f}")

    try:
        found = search_pair(method, spec, a, b, data, options=options, seed=seed, left=left, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    recovery = None
    if truth is not None:
        planted = planted_alignment(*(load_permutation(path, spec, b) for path in truth))
        recovery = agreement(found.permutation, planted)
    save_permutation(out, spec, found.permutation, {
        "method": method, "options": options, "seed": seed, "residual": residual,
        "model_a": str(sources[0]), "model_b": str(sources[1]), "recovery": recovery,
        "energy_examples": None if data is None else len(data.y), "wall_seconds": found.seconds, "log": trace,
        "provenance": provenance(),
    })
    return found.permutation


def search_arguments(p: argparse.ArgumentParser) -> None:
    _method_and_data(p)
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    search_examples_option(p)
    p.add_argument("--truth", nargs=2, default=None, metavar=("PERM_A", "PERM_B"),
                   help="planted permutations of two S' copies: record how many units the search recovers")
    residual_options(p)
    p.add_argument("--out", required=True)


def run_search_pair(
    method: str, model_a: PathLike, model_b: PathLike, data_path: PathLike, out: PathLike, *,
    options: dict[str, Any], seed: int, search_examples: int | None, residual: str = "full",
    expect: str | None = None, truth: tuple[PathLike, PathLike] | None = None, device: torch.device = CPU,
) -> None:
    """One pair's search (``python -m permlmc search-pair``); see :func:`search_and_save`."""
    arch, (a, b) = load_checkpoints([model_a, model_b], expect)
    spec = permutation_spec(arch, residual)
    data = search_data(method, arch, spec, data_path, search_examples, seed, device)
    search_and_save(method, spec, a, b, data, out, options=options, seed=seed, residual=residual,
                    sources=(model_a, model_b), truth=truth, device=device, left=streams_left(arch, options))


def interpolate_pair(
    setup: CurveSetup, a: StateDict, b_perm: StateDict, out_json: PathLike, out_curve: PathLike, *,
    labels: dict[str, Any], residual: str, sources: tuple[PathLike, PathLike, PathLike], device: torch.device,
) -> None:
    """Interpolation curves between A and the permuted B under each BatchNorm mode of ``setup``, written to
    ``out_curve``, and their Eq. 1 barriers (sup over alpha and alpha = 1/2) to ``out_json``. ``sources``: the
    paths of A, B and B's permutation, recorded with the result."""
    a, b_perm = to_device(a, device), to_device(b_perm, device)
    rows: list[CurveRow] = []
    barriers: dict[tuple[str, str, str], dict[str, float]] = {}  # (bn_mode, split, metric) -> {sup, mid}
    seconds: dict[str, float] = {}  # wall time of each mode's curve: where a pair job's time goes
    for mode in setup.modes:
        start = time.perf_counter()
        found = pair_barriers(setup.model, a, b_perm, setup.alphas, setup.splits, bn_mode=mode,
                              batches=setup.batches, stacked=setup.stacked, temperature_split=setup.temperature_split)
        seconds[mode] = time.perf_counter() - start
        rows.extend((mode, p.alpha, p.split, p.metric, p.value) for p in found.points)
        barriers.update({(mode, split, metric): value for (split, metric), value in found.barriers.items()})
    model_a, model_b, permutation = sources
    search_meta = read_json(Path(permutation).with_suffix(".json"))
    write_pair_result(out_json, out_curve, rows, barriers, {
        **labels, "residual": residual, "alphas": [float(v) for v in setup.alphas],
        "bn_modes_skipped": setup.skipped,
        "model_a": str(model_a), "model_b": str(model_b), "permutation": str(permutation),
        "search_seconds": search_meta.get("wall_seconds", 0.0), "curve_seconds": seconds,
        "search_options": search_meta.get("options", {}),
        "recovery": (search_meta.get("recovery") or {}).get("all"),
        "evaluated_on": {s: {"examples": len(xy[1]), "seed": 0} for s, xy in setup.splits.items()},
        "bn_statistics": setup.bn_statistics, "device": str(device),
        "stacked": setup.stacked, "temperature_fitted_on": setup.temperature_split, "provenance": provenance(),
    })


def interpolate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    p.add_argument("--permutation", required=True)
    p.add_argument("--data", dest="data_path", metavar="DATA", required=True)
    curve_options(p)
    residual_options(p)
    p.add_argument("--out", dest="out_json", metavar="OUT", required=True)
    p.add_argument("--curve-out", dest="out_curve", metavar="CURVE", required=True)


def run_interpolate_pair(
    model_a: PathLike, model_b: PathLike, permutation: PathLike, data_path: PathLike, out_json: PathLike,
    out_curve: PathLike, *, alphas: Sequence[float], train_examples: int | None, test_examples: int | None,
    labels: dict[str, Any], residual: str = "full", bn_modes: Sequence[str] = ("interpolate",),
    bn_batches: int = 10, bn_batch_size: int = 256, expect: str | None = None, device: torch.device = CPU,
    stacked: bool = False, temperature_scaled: bool = False,
) -> None:
    """One pair's curves and barriers (``python -m permlmc interpolate-pair``); see :func:`interpolate_pair`."""
    arch, (a, b) = load_checkpoints([model_a, model_b], expect)
    spec = permutation_spec(arch, residual)
    b_perm = apply_permutation(spec, load_permutation(permutation, spec, b), b)
    setup = curve_setup(arch, load_dataset(data_path, device=device), alphas=alphas, train_examples=train_examples,
                        test_examples=test_examples, bn_modes=bn_modes, bn_batches=bn_batches,
                        bn_batch_size=bn_batch_size, stacked=stacked, device=device,
                        temperature_scaled=temperature_scaled)
    interpolate_pair(setup, a, b_perm, out_json, out_curve, labels=labels, residual=residual,
                     sources=(model_a, model_b, permutation), device=device)


def pairs_arguments(p: argparse.ArgumentParser) -> None:
    _method_and_data(p)
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
    "search-pair": Verb("Search a permutation of model B that removes its barrier with model A.", search_arguments,
                        run_search_pair),
    "interpolate-pair": Verb("Interpolation curve and Eq. 1 barriers between A and the permuted B.",
                             interpolate_arguments, run_interpolate_pair),
}
