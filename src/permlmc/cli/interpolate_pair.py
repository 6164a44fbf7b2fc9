"""``interpolate-pair``: one pair's curves by hand, and :func:`interpolate_pair`, the curve half of every pair job
(``search-pairs``): A and the permuted B's curves under each BatchNorm mode (``curve.csv``) and their Eq. 1 barriers
(``barrier.json``)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from permlmc.artifacts.checkpoints import load_checkpoints, load_permutation
from permlmc.artifacts.files import read_json
from permlmc.artifacts.pair_result import CurveRow, write_pair_result
from permlmc.artifacts.provenance import provenance
from permlmc.cli.verb import Verb, curve_options, data_option, residual_options
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU, to_device
from permlmc.interpolation.barriers import pair_barriers
from permlmc.interpolation.setup import CurveSetup, curve_setup
from permlmc.models import permutation_spec
from permlmc.permutation import apply_permutation
from permlmc.types import PathLike, StateDict


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
    data_option(p)
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


VERBS = {
    "interpolate-pair": Verb("Interpolation curve and Eq. 1 barriers between A and the permuted B.",
                             interpolate_arguments, run_interpolate_pair),
}
