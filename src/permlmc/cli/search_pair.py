"""``search-pair``: one pair's search by hand, and :func:`search_and_save`, the search half of every pair job
(``search-pairs``): B's permutation towards A, written with its sidecar (``permutation.safetensors`` + ``.json``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch

from permlmc.artifacts.checkpoints import load_checkpoints, load_permutation, save_permutation
from permlmc.artifacts.provenance import provenance
from permlmc.cli.progress import Bar
from permlmc.cli.verb import Verb, data_option, method_arguments, residual_options, search_examples_option
from permlmc.device import CPU, to_device
from permlmc.models import permutation_spec
from permlmc.permutation import PermutationSpec, agreement, planted_alignment
from permlmc.search import SearchData
from permlmc.search.inputs import search_data
from permlmc.search.pair import search_pair, streams_left
from permlmc.types import PathLike, Permutation, StateDict


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
    method_arguments(p)
    data_option(p)
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


VERBS = {
    "search-pair": Verb("Search a permutation of model B that removes its barrier with model A.", search_arguments,
                        run_search_pair),
}
