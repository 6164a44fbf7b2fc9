"""One function per workflow step: read inputs, call the library, write outputs atomically with provenance.

Each is what ``python -m lmc <verb>`` runs; none of them knows about Snakemake.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmc import seeding
from lmc.artifacts.checkpoints import load_checkpoint, load_permutation, save_checkpoint, save_permutation
from lmc.artifacts.files import atomic_path, read_json, sha256, write_json
from lmc.artifacts.provenance import provenance
from lmc.barrier import barrier, midpoint_barrier
from lmc.data.dataset import Dataset, load_dataset
from lmc.data.prepare import prepare_dataset, write_prepared
from lmc.device import to_device
from lmc.evaluation import functional_forward, max_logit_difference
from lmc.interpolation.batchnorm import batchnorm_layers
from lmc.interpolation.path import CurvePoint, interpolation_curve
from lmc.models import Architecture, build_model, permutation_spec
from lmc.permutation import PermutationSpec, agreement, apply_permutation, planted_alignment, random_permutation
from lmc.search import REQUIRES, SearchData, get_search
from lmc.search.features import unit_features
from lmc.training.loop import TrainConfig
from lmc.training.resume import ResumeFile
from lmc.training.stacked import train_seeds
from lmc.types import Permutation, StateDict

log = logging.getLogger("lmc")
CPU = torch.device("cpu")
PathLike = str | os.PathLike[str]


def fixed_subset(n_total: int, n: int | None, seed: int, purpose: int) -> torch.Tensor:
    """A fixed random subset of ``n`` indices (all, in order, when ``n`` is None or too large)."""
    if n is None or n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=seeding.generator(seed, seeding.EVAL_SUBSET, purpose))[:n].sort().values


def run_prepare_dataset(
    name: str, root: PathLike, out: PathLike, *, download: bool, image_size: int | None, train_subset: int | None,
    subset_seed: int = 0,
) -> None:
    tensors, meta = prepare_dataset(
        name, root=root, download=download, image_size=image_size, train_subset=train_subset,
        subset_seed=subset_seed,
    )
    write_prepared(out, tensors, meta)


def run_train(
    data_path: PathLike, arch_name: str, depth: int, width: int, seeds: Sequence[int], config: TrainConfig,
    outs: Sequence[PathLike], *, checkpoint_every: int = 0, device: torch.device = CPU, engine: str = "auto",
) -> None:
    """Train networks ``seeds`` (one checkpoint in ``outs`` each) in one process: MLPs as one batched block
    (:mod:`lmc.training.stacked`; a seed's weights do not depend on its block), other families one after the
    other. With ``checkpoint_every`` > 0 each seed keeps a resumable state next to its checkpoint (removed once
    the checkpoint is written), so rerunning a killed job continues where it stopped."""
    if len(seeds) != len(outs) or len(set(seeds)) != len(seeds):
        raise ValueError(f"give one output per seed and no seed twice: seeds {list(seeds)}, outputs {list(outs)}")
    data = load_dataset(data_path)
    arch = Architecture(arch_name, depth, width, data.input_shape, data.num_classes)
    out_of = {seed: Path(out) for seed, out in zip(seeds, outs, strict=True)}
    resumes = {seed: ResumeFile(out.with_name("train_state.safetensors"), checkpoint_every)
               for seed, out in out_of.items()} if checkpoint_every else {}
    start = time.perf_counter()
    results = train_seeds(
        arch, seeds, config, data.split("train"), data.split("test"), device=device, engine=engine,
        resume=resumes.get if resumes else None,
        on_epoch=lambda seed, r: log.info("seed %d epoch %d lr %.4g train loss %.4f err %.4f", seed, r["epoch"],
                                          r["lr"], r["train_loss"], r["train_error"]),
    )
    wall = time.perf_counter() - start
    for seed, result in results.items():
        save_checkpoint(out_of[seed], arch, result.state_dict, {
            "kind": "real", "seed": seed,
            "dataset": {"name": data.name, "path": str(data_path), "sha256": sha256(data_path)},
            "training": config.to_dict(), "epochs": result.epochs, "steps": result.steps,
            "stopped_by": result.stopped_by, "engine": result.engine, "block": list(seeds),
            "final": {"train_loss": result.train.loss, "train_error": result.train.error,
                      "test_loss": result.test.loss, "test_error": result.test.error},
            "history": result.history, "wall_seconds": wall / len(seeds), "block_wall_seconds": wall,
            "provenance": provenance(),
        })
        if seed in resumes:
            resumes[seed].remove()


def run_permute(
    model_path: PathLike, data_path: PathLike, copies: int, out_model: str, out_permutation: str,
    *, tolerance: float = 1e-4, residual: str = "full", expect: str | None = None,
) -> None:
    """Our model S' (§3.5): ``copies`` random permutations of a trained network, each checked to be the same
    function. ``out_model``/``out_permutation`` are templates with a ``{copy}`` field (1-based)."""
    arch, state, meta = load_checkpoint(model_path, expect_name=expect)
    spec = permutation_spec(arch, residual)
    forward = functional_forward(build_model(arch))
    x = load_dataset(data_path).split("test")[0][:512]
    for copy in range(1, copies + 1):
        perm = random_permutation(spec, state, seeding.generator(int(meta["seed"]), seeding.PERMUTED_COPY, copy))
        permuted = apply_permutation(spec, perm, state)
        diff = max_logit_difference(forward, state, permuted, x)
        if not diff <= tolerance:
            raise RuntimeError(f"permuted copy {copy} of {model_path} is not the same function: max |dlogit| {diff}")
        common = {"source": str(model_path), "source_sha256": meta["sha256"], "copy": copy, "residual": residual,
                  "provenance": provenance()}
        permutation_path = out_permutation.format(copy=copy)
        save_permutation(permutation_path, spec, perm, {"method": "random", **common})
        save_checkpoint(out_model.format(copy=copy), arch, permuted, {
            **{k: meta[k] for k in ("seed", "dataset", "training", "epochs", "steps", "stopped_by", "final")},
            "kind": "model", "permutation": permutation_path, "max_logit_difference": diff, **common,
        })


def search_data(
    method: str, arch: Architecture, spec: PermutationSpec, data: PathLike | Dataset, examples: int | None,
    seed: int, device: torch.device = CPU,
) -> SearchData | None:
    """What ``method`` reads besides the weights (see ``lmc.search.REQUIRES``): a fixed training subset, the
    network's function and, for activation-based matching, its units' features."""
    needs = REQUIRES.get(method, ())
    if not needs:
        return None
    x, y = (data if isinstance(data, Dataset) else load_dataset(data)).split("train")
    idx = fixed_subset(len(x), examples, seed, 0).to(x.device)
    x, y = x[idx].to(device), y[idx].to(device)
    model = build_model(arch).to(device)
    features = unit_features(model, spec) if "features" in needs else None
    return SearchData(functional_forward(model), x, y, features=features)


def search_pair(
    method: str, spec: PermutationSpec, a: StateDict, b: StateDict, data: SearchData | None, out: PathLike, *,
    options: dict[str, Any], seed: int, residual: str, sources: tuple[PathLike, PathLike],
    truth: tuple[PathLike, PathLike] | None = None, device: torch.device = CPU,
) -> Permutation:
    """Search a permutation of B towards A and write it to ``out`` with its sidecar. Every pair draws from a fresh
    generator of ``seed``, so a pair's result does not depend on the pairs searched before it in the same process.
    ``truth``: the planted permutations of two S' copies (A and B); the sidecar then records the fraction of
    units the search maps back to their true place."""
    if data is not None:  # searches that run the network work where its data are; weight-only ones on the CPU
        a, b = to_device(a, device), to_device(b, device)
    trace: list[dict[str, Any]] = []
    search = get_search(method)  # looked up before the clock starts: wall time is the search's own
    start = time.perf_counter()
    perm = search(spec, a, b, data=data, generator=seeding.generator(seed, seeding.SEARCH), progress=trace.append,
                  **options)
    wall = time.perf_counter() - start
    perm = {name: p.cpu() for name, p in perm.items()}
    recovery = None
    if truth is not None:
        planted = planted_alignment(*(load_permutation(path, spec, b) for path in truth))
        recovery = agreement(perm, planted)
    save_permutation(out, spec, perm, {
        "method": method, "options": options, "seed": seed, "residual": residual,
        "model_a": str(sources[0]), "model_b": str(sources[1]), "recovery": recovery,
        "energy_examples": None if data is None else len(data.y), "wall_seconds": wall, "log": trace,
        "provenance": provenance(),
    })
    return perm


def run_search(
    method: str, model_a: PathLike, model_b: PathLike, data_path: PathLike, out: PathLike, *,
    options: dict[str, Any], seed: int, train_examples: int | None, residual: str = "full",
    expect: str | None = None, truth: tuple[PathLike, PathLike] | None = None, device: torch.device = CPU,
) -> None:
    """One pair's search (``python -m lmc search``); see :func:`search_pair`."""
    arch, a, _ = load_checkpoint(model_a, expect_name=expect)
    _, b, _ = load_checkpoint(model_b, expect=arch)
    spec = permutation_spec(arch, residual)
    data = search_data(method, arch, spec, data_path, train_examples, seed, device)
    search_pair(method, spec, a, b, data, out, options=options, seed=seed, residual=residual,
                sources=(model_a, model_b), truth=truth, device=device)


def _evaluation_splits(
    data: Dataset, train_examples: int | None, test_examples: int | None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    splits = {}
    for purpose, (split, n) in enumerate((("train", train_examples), ("test", test_examples)), start=1):
        x, y = data.split(split)
        idx = fixed_subset(len(x), n, 0, purpose).to(x.device)
        splits[split] = (x[idx], y[idx])
    return splits


def statistics_batches(data: Dataset, batches: int, batch_size: int) -> list[torch.Tensor]:
    """Fixed training batches for BatchNorm ``reset``/``repair`` (same for every alpha and every pair)."""
    x, _ = data.split("train")
    idx = fixed_subset(len(x), batches * batch_size, 0, 3).to(x.device)
    return list(x[idx].split(batch_size))


@dataclass(frozen=True)
class CurveSetup:
    """What every interpolation curve of one network shares: the model skeleton, the evaluation subsets, the
    BatchNorm statistics batches and the modes that apply (modes other than ``interpolate`` need BatchNorm)."""

    model: torch.nn.Module
    alphas: Sequence[float]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    modes: list[str]
    skipped: list[str]
    batches: list[torch.Tensor]
    bn_statistics: dict[str, int] | None
    batched: bool


def curve_setup(
    arch: Architecture, data: Dataset, *, alphas: Sequence[float], train_examples: int | None,
    test_examples: int | None, bn_modes: Sequence[str], bn_batches: int, bn_batch_size: int, batched: bool,
    device: torch.device,
) -> CurveSetup:
    model = build_model(arch).to(device)
    has_bn = bool(batchnorm_layers(model))
    modes = [m for m in bn_modes if m == "interpolate" or has_bn]
    return CurveSetup(
        model=model, alphas=alphas, splits=_evaluation_splits(data, train_examples, test_examples), modes=modes,
        skipped=[m for m in bn_modes if m not in modes],
        batches=statistics_batches(data, bn_batches, bn_batch_size) if has_bn else [],
        bn_statistics={"batches": bn_batches, "batch_size": bn_batch_size} if has_bn else None, batched=batched,
    )


def interpolate_pair(
    setup: CurveSetup, a: StateDict, b_perm: StateDict, out_json: PathLike, out_curve: PathLike, *,
    labels: dict[str, Any], residual: str, sources: tuple[PathLike, PathLike, PathLike], device: torch.device,
) -> None:
    """Interpolation curves between A and the permuted B under each BatchNorm mode of ``setup``, written to
    ``out_curve``, and their Eq. 1 barriers (sup over alpha and alpha = 1/2) to ``out_json``. ``sources``: the
    paths of A, B and B's permutation, recorded with the result."""
    a, b_perm = to_device(a, device), to_device(b_perm, device)
    rows: list[tuple[str, CurvePoint]] = []
    for mode in setup.modes:
        points = interpolation_curve(setup.model, a, b_perm, setup.alphas, setup.splits, bn_mode=mode,
                                     batches=setup.batches, batched=setup.batched)
        rows.extend((mode, p) for p in points)
    with atomic_path(out_curve) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["bn_mode", "alpha", "split", "metric", "value"])
        writer.writerows([mode, p.alpha, p.split, p.metric, repr(p.value)] for mode, p in rows)
    result: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for mode in setup.modes:
        for split in setup.splits:
            for metric in ("loss", "error"):
                al, vals = zip(*[(p.alpha, p.value) for m, p in rows
                                 if m == mode and p.split == split and p.metric == metric], strict=True)
                result.setdefault(mode, {}).setdefault(split, {})[metric] = {
                    "sup": barrier(al, vals), "mid": midpoint_barrier(al, vals)}
    model_a, model_b, permutation = sources
    search_meta = read_json(Path(permutation).with_suffix(".json"))
    write_json(out_json, {
        **labels, "residual": residual, "alphas": [float(v) for v in setup.alphas], "barriers": result,
        "bn_modes_skipped": setup.skipped,
        "model_a": str(model_a), "model_b": str(model_b), "permutation": str(permutation),
        "search_seconds": search_meta.get("wall_seconds", 0.0), "search_options": search_meta.get("options", {}),
        "recovery": (search_meta.get("recovery") or {}).get("all"),
        "evaluated_on": {s: {"examples": len(xy[1]), "seed": 0} for s, xy in setup.splits.items()},
        "bn_statistics": setup.bn_statistics, "curve": str(out_curve), "device": str(device),
        "batched": setup.batched, "provenance": provenance(),
    })


def run_barrier(
    model_a: PathLike, model_b: PathLike, permutation: PathLike, data_path: PathLike, out_json: PathLike,
    out_curve: PathLike, *, alphas: Sequence[float], train_examples: int | None, test_examples: int | None,
    labels: dict[str, Any], residual: str = "full", bn_modes: Sequence[str] = ("interpolate",),
    bn_batches: int = 10, bn_batch_size: int = 256, expect: str | None = None, device: torch.device = CPU,
    batched: bool = False,
) -> None:
    """One pair's curves and barriers (``python -m lmc barrier``); see :func:`interpolate_pair`."""
    arch, a, _ = load_checkpoint(model_a, expect_name=expect)
    _, b, _ = load_checkpoint(model_b, expect=arch)
    spec = permutation_spec(arch, residual)
    b_perm = apply_permutation(spec, load_permutation(permutation, spec, b), b)
    setup = curve_setup(arch, load_dataset(data_path, device=device), alphas=alphas, train_examples=train_examples,
                        test_examples=test_examples, bn_modes=bn_modes, bn_batches=bn_batches,
                        bn_batch_size=bn_batch_size, batched=batched, device=device)
    interpolate_pair(setup, a, b_perm, out_json, out_curve, labels=labels, residual=residual,
                     sources=(model_a, model_b, permutation), device=device)


PAIR_KEYS = {"kind", "pair", "model_a", "model_b", "out", "truth"}
"""Keys of one item of ``run_search_pairs``'s ``pairs``; ``truth`` (S' pairs: the copies' planted permutations)
is optional."""


def run_search_pairs(
    method: str, pairs: Sequence[Mapping[str, Any]], data_path: PathLike, *, options: dict[str, Any], seed: int,
    search_examples: int | None, alphas: Sequence[float], train_examples: int | None, test_examples: int | None,
    labels: dict[str, Any], residual: str = "full", bn_modes: Sequence[str] = ("interpolate",),
    bn_batches: int = 10, bn_batch_size: int = 256, expect: str | None = None, device: torch.device = CPU,
    batched: bool = False,
) -> None:
    """Search and interpolate every pair of one network with one method, in one process (``python -m lmc
    search-pairs``). Each pair (``kind``, ``pair``, ``model_a``, ``model_b``, optional ``truth``) gets, under its
    directory ``out``, the files of :func:`search_pair` (``permutation.safetensors`` + ``.json``) and of
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
                        bn_modes=bn_modes, bn_batches=bn_batches, bn_batch_size=bn_batch_size, batched=batched,
                        device=device)
    for item in pairs:
        out = Path(item["out"])
        _, a, _ = load_checkpoint(item["model_a"], expect=arch)
        _, b, _ = load_checkpoint(item["model_b"], expect=arch)
        truth = (item["truth"][0], item["truth"][1]) if item.get("truth") else None
        start = time.perf_counter()
        perm = search_pair(method, spec, a, b, searched, out / "permutation.safetensors", options=options,
                           seed=seed, residual=residual, sources=(item["model_a"], item["model_b"]),
                           truth=truth, device=device)
        interpolate_pair(setup, a, apply_permutation(spec, perm, b), out / "barrier.json", out / "curve.csv",
                         labels={**labels, "kind": item["kind"], "pair": item["pair"]}, residual=residual,
                         sources=(item["model_a"], item["model_b"], out / "permutation.safetensors"), device=device)
        log.info("%s pair %s: %s and its curves in %.2f s", item["kind"], item["pair"], method,
                 time.perf_counter() - start)


def alpha_grid(points: int) -> list[float]:
    """``points`` evenly spaced alphas in [0, 1]; an odd count includes the midpoint."""
    if points < 3:
        raise ValueError(f"barrier.alphas must be at least 3 (endpoints and midpoint), got {points}")
    return [float(v) for v in np.linspace(0.0, 1.0, points)]
