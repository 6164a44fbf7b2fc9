"""Command line: ``python -m lmc <verb> ...``, one verb per workflow step (see ``--help``).

Nothing here imports torch: a verb names the modules it needs (``needs``) and whether it computes on tensors
(``tensors``), so the table and figure verbs start in a fraction of torch's start-up. Those modules are imported
before the verb's clock starts (:mod:`lmc.cli.timing`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmc.cli import timing

Handler = Callable[[argparse.Namespace], None]
COMMANDS = ("lmc.cli.commands",)
STUDIES = ("lmc.cli.study_commands",)
TABLES = ("lmc.artifacts.tables",)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "null", "") else int(text)


def _prepare(args: argparse.Namespace) -> None:
    from lmc.cli.commands import run_prepare_dataset

    run_prepare_dataset(args.name, args.root, args.out, download=args.download, image_size=args.image_size,
                        train_subset=args.train_subset, subset_seed=args.subset_seed)


def _fetch(args: argparse.Namespace) -> None:
    from lmc.data.fetch import fetch_for_config

    for name, how in fetch_for_config(args.config).items():
        print(f"{name}: {how}")


def _train(args: argparse.Namespace) -> None:
    from lmc.cli.commands import run_train
    from lmc.training.loop import TrainConfig

    run_train(args.data, args.arch, args.depth, args.width, args.seed, TrainConfig.from_dict(args.config), args.out,
              checkpoint_every=args.checkpoint_every, device=args.torch_device, engine=args.engine)


def _permute(args: argparse.Namespace) -> None:
    from lmc.cli.commands import run_permute

    run_permute(args.model, args.data, args.copies, args.out, args.permutation_out, tolerance=args.tolerance,
                residual=args.residual, expect=args.expect)


def _search(args: argparse.Namespace) -> None:
    from lmc.cli.commands import run_search

    run_search(args.method, args.model_a, args.model_b, args.data, args.out, options=args.options, seed=args.seed,
               train_examples=args.train_examples, residual=args.residual, expect=args.expect,
               truth=tuple(args.truth) if args.truth else None, device=args.torch_device)


def _barrier(args: argparse.Namespace) -> None:
    from lmc.cli.commands import alpha_grid, run_barrier

    run_barrier(args.model_a, args.model_b, args.permutation, args.data, args.out, args.curve_out,
                alphas=alpha_grid(args.alphas), train_examples=args.train_examples,
                test_examples=args.test_examples, labels=args.labels, residual=args.residual,
                bn_modes=args.bn_modes, bn_batches=args.bn_batches, bn_batch_size=args.bn_batch_size,
                expect=args.expect, device=args.torch_device, batched=args.batched)


def _json_list(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise argparse.ArgumentTypeError("expected a JSON list of objects")
    return value


def _search_pairs(args: argparse.Namespace) -> None:
    from lmc.cli.commands import alpha_grid, run_search_pairs

    run_search_pairs(args.method, args.pairs, args.data, options=args.options, seed=args.seed,
                     search_examples=args.search_examples, alphas=alpha_grid(args.alphas),
                     train_examples=args.train_examples, test_examples=args.test_examples, labels=args.labels,
                     residual=args.residual, bn_modes=args.bn_modes, bn_batches=args.bn_batches,
                     bn_batch_size=args.bn_batch_size, expect=args.expect, device=args.torch_device,
                     batched=args.batched)


def _tabulate_barriers(args: argparse.Namespace) -> None:
    from lmc.artifacts.tables import barrier_tables, method_summary, write_csv

    tables = barrier_tables(args.inputs)
    for name, out in (("barriers", args.barriers), ("curves", args.curves), ("sa_traces", args.sa_traces)):
        write_csv(tables[name], out)
    if args.methods:
        write_csv(method_summary(tables["barriers"]), args.methods)


def _tabulate_models(args: argparse.Namespace) -> None:
    from lmc.artifacts.tables import model_table, write_csv

    write_csv(model_table(args.inputs), args.out)


def _tabulate_rows(args: argparse.Namespace) -> None:
    from lmc.artifacts.tables import row_table, write_csv

    write_csv(row_table(args.inputs), args.out)


def _all_pairs(args: argparse.Namespace) -> None:
    from lmc.cli.commands import alpha_grid
    from lmc.cli.study_commands import run_all_pairs

    run_all_pairs(args.models, args.data, args.out, method=args.method, options=args.options,
                  examples=args.train_examples, alphas=alpha_grid(args.alphas), seed=args.seed, labels=args.labels,
                  residual=args.residual, expect=args.expect, device=args.torch_device)


def _theorem(args: argparse.Namespace) -> None:
    from lmc.cli.commands import alpha_grid
    from lmc.cli.study_commands import run_theorem

    run_theorem(args.out, widths=args.widths, input_dims=args.input_dims, draws=args.draws, inputs=args.inputs,
                method=args.method, options=args.options, alphas=alpha_grid(args.alphas), seed=args.seed)


def _group_search(args: argparse.Namespace) -> None:
    from lmc.cli.commands import alpha_grid
    from lmc.cli.study_commands import run_group_search

    run_group_search(args.models, args.data, args.out, method=args.method, options=args.options,
                     examples=args.train_examples, alphas=alpha_grid(args.alphas), seed=args.seed,
                     labels=args.labels, residual=args.residual, expect=args.expect, device=args.torch_device)


def _ensembles(args: argparse.Namespace) -> None:
    from lmc.cli.study_commands import run_ensembles
    from lmc.training.loop import TrainConfig

    permutations = {}
    for item in args.permutations:
        method, separator, path = item.partition("=")
        if not separator or not method or not path:
            raise ValueError(f"--permutations expects METHOD=PATH items, got {item!r}")
        permutations[method] = path
    run_ensembles(args.model_a, args.model_b, permutations, args.data, args.out,
                  line_config=TrainConfig.from_dict(args.config), beta=args.beta, line_method=args.line_method,
                  seed=args.seed, labels=args.labels, test_examples=args.test_examples, residual=args.residual,
                  bn_batches=args.bn_batches, bn_batch_size=args.bn_batch_size, expect=args.expect,
                  device=args.torch_device)


def _plot(args: argparse.Namespace) -> None:
    import pandas as pd

    from lmc.plotting import FIGURES

    unknown = [name for name in args.figure if name not in FIGURES]
    if unknown:
        raise SystemExit(f"unknown figure(s) {unknown}; choose from {sorted(FIGURES)}")
    if len(args.out) != len(args.figure):
        raise SystemExit(f"give one --out per --figure: {len(args.figure)} figures, {len(args.out)} paths")
    tables = {Path(p).stem: pd.read_csv(p) for p in args.tables}
    for name, out in zip(args.figure, args.out, strict=True):
        FIGURES[name](tables, Path(out), args.options)


def _residual_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--residual", default="full", choices=["full", "internal"],
                        help="residual networks: permute whole residual streams (full) or only inside blocks")
    parser.add_argument("--expect", default=None, metavar="NETWORK",
                        help="fail unless the checkpoints are this network, e.g. mlp-d1-w16")


def _batchnorm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bn-modes", nargs="+", default=["interpolate"],
                        help="BatchNorm treatment along the path: interpolate, reset, repair (BN networks only)")
    parser.add_argument("--bn-batches", type=int, default=10, help="training batches for reset/repair statistics")
    parser.add_argument("--bn-batch-size", type=int, default=256)
    parser.add_argument("--batched", action="store_true",
                        help="evaluate all alphas in one vmapped pass (pays on GPUs and for small networks)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmc", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default=os.environ.get("LMC_DEVICE", "cpu"),
                        help="cpu, cuda, cuda:N or auto (default: $LMC_DEVICE, else cpu)")
    parser.add_argument("--tf32", action="store_true",
                        help="allow TF32 matmuls on GPUs (faster; off by default so results match full fp32)")
    parser.add_argument("-v", "--verbose", action="store_true")
    verbs = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, handler: Handler, help: str, needs: Sequence[str] = COMMANDS, tensors: bool = True,
             device: bool = True) -> argparse.ArgumentParser:
        """Register verb ``name``: ``needs`` are the modules it imports, ``tensors`` whether it uses torch,
        ``device`` whether it computes on the configured device (the others run where CUDA may be absent)."""
        sub = verbs.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler, needs=needs, tensors=tensors, on_device=tensors and device)
        return sub

    p = verb("prepare-dataset", _prepare, "Write a dataset as uint8 safetensors with normalisation statistics.",
             device=False)
    p.add_argument("--name", required=True)
    p.add_argument("--root", required=True, help="directory holding (or receiving) the raw files")
    p.add_argument("--download", action="store_true", help="let torchvision download missing files")
    p.add_argument("--image-size", type=_optional_int, default=None)
    p.add_argument("--train-subset", type=_optional_int, default=None)
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = verb("fetch-data", _fetch, "Make the raw files of every dataset in a config available (apt or download).",
             needs=("lmc.data.fetch",), tensors=False)
    p.add_argument("--config", required=True)

    p = verb("train", _train, "Train networks of one architecture with SGD (paper's Table 1 protocol).")
    p.add_argument("--data", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--seed", type=int, nargs="+", required=True, help="one or more seeds, trained in one block")
    p.add_argument("--engine", default="auto", choices=["auto", "batched", "sequential"],
                   help="batched: one stacked MLP block; auto picks by architecture and device, never by block")
    p.add_argument("--config", type=_json, default={}, help="training hyperparameters as a JSON object")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="save a resumable state every N epochs (0: never); a rerun resumes from it")
    p.add_argument("--out", nargs="+", required=True, help="one checkpoint path per seed, in the same order")

    p = verb("permute", _permute, "Write randomly permuted copies of a checkpoint (the paper's S').", device=False)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--copies", type=int, required=True)
    _residual_option(p)
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed max |logit difference|")
    p.add_argument("--out", required=True, help="checkpoint path template with a {copy} field")
    p.add_argument("--permutation-out", required=True, help="permutation path template with a {copy} field")

    p = verb("search", _search, "Search a permutation of model B that removes its barrier with model A.")
    p.add_argument("--method", required=True)
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--options", type=_json, default={})
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-examples", type=_optional_int, default=None,
                   help="training examples data-based searches read (SA energy, activations)")
    p.add_argument("--truth", nargs=2, default=None, metavar=("PERM_A", "PERM_B"),
                   help="planted permutations of two S' copies: record how many units the search recovers")
    _residual_option(p)
    p.add_argument("--out", required=True)

    p = verb("barrier", _barrier, "Interpolation curve and Eq. 1 barriers between A and the permuted B.")
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    p.add_argument("--permutation", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--alphas", type=int, default=11)
    p.add_argument("--train-examples", type=_optional_int, default=None)
    p.add_argument("--test-examples", type=_optional_int, default=None)
    p.add_argument("--labels", type=_json, default={}, help="identity columns recorded in the table")
    _residual_option(p)
    _batchnorm_options(p)
    p.add_argument("--out", required=True)
    p.add_argument("--curve-out", required=True)

    p = verb("search-pairs", _search_pairs, "Search and interpolate every pair of one network with one method, "
             "in one process: each pair's permutation, curve and Eq. 1 barriers.")
    p.add_argument("--method", required=True)
    p.add_argument("--pairs", type=_json_list, required=True,
                   help="JSON list of {kind, pair, model_a, model_b, out[, truth: [PERM_A, PERM_B]]}: each pair's "
                        "files go to its directory `out`")
    p.add_argument("--data", required=True)
    p.add_argument("--options", type=_json, default={}, help="search options as a JSON object")
    p.add_argument("--seed", type=int, default=0, help="seed of every pair's search stream")
    p.add_argument("--search-examples", type=_optional_int, default=None,
                   help="training examples data-based searches read (SA energy, activations)")
    p.add_argument("--alphas", type=int, default=11)
    p.add_argument("--train-examples", type=_optional_int, default=None, help="train examples of each curve")
    p.add_argument("--test-examples", type=_optional_int, default=None, help="test examples of each curve")
    p.add_argument("--labels", type=_json, default={}, help="identity columns recorded in the tables")
    _residual_option(p)
    _batchnorm_options(p)

    p = verb("tabulate-barriers", _tabulate_barriers, "Gather barrier.json files into tidy CSV tables.", needs=TABLES,
             tensors=False)
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--barriers", required=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--sa-traces", required=True)
    p.add_argument("--methods", default=None, help="also write the per-method summary (barrier, time, recovery)")

    p = verb("tabulate-models", _tabulate_models, "Gather model.json sidecars into one CSV table.", needs=TABLES,
             tensors=False)
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--out", required=True)

    p = verb("tabulate-rows", _tabulate_rows, "Gather the rows of study JSON files into one CSV table.", needs=TABLES,
             tensors=False)
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--out", required=True)

    def study_inputs(p: argparse.ArgumentParser, *, models: bool = True) -> None:
        p.add_argument("--options", type=_json, default={}, help="search options as a JSON object")
        if models:
            p.add_argument("--models", nargs="+", required=True, help="checkpoints, in seed/copy order")
            p.add_argument("--data", required=True)
            p.add_argument("--train-examples", type=_optional_int, default=None,
                           help="training examples the search and the barriers use")
            p.add_argument("--labels", type=_json, default={}, help="identity columns recorded in the table")
            _residual_option(p)
        p.add_argument("--method", required=True)
        p.add_argument("--alphas", type=int, default=11)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", required=True)

    p = verb("all-pairs", _all_pairs, "Barriers of every pair of many networks before/after a search (App. E.3).",
             needs=STUDIES)
    study_inputs(p)

    p = verb("group-search", _group_search, "Permute n networks with a group search (SA1/SA2, paper 4.2).",
             needs=STUDIES)
    study_inputs(p)

    p = verb("theorem", _theorem, "Theorem 3.1 at random initialisation: interpolation gap vs width.",
             needs=STUDIES, device=False)
    study_inputs(p, models=False)
    p.add_argument("--widths", type=int, nargs="+", required=True)
    p.add_argument("--input-dims", type=int, nargs="+", required=True)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--inputs", type=int, default=1000, help="inputs on the sphere of radius sqrt(d)")

    p = verb("ensembles", _ensembles, "Ensembles of a trained pair and of learnt lines (App. C, Table 3).",
             needs=STUDIES)
    p.add_argument("--model-a", required=True)
    p.add_argument("--model-b", required=True)
    p.add_argument("--permutations", nargs="+", required=True, metavar="METHOD=PATH",
                   help="B's permutation per search method; the first gives the endpoint rows")
    p.add_argument("--line-method", required=True, help="the method whose permutation starts the matched line")
    p.add_argument("--data", required=True)
    p.add_argument("--config", type=_json, default={}, help="line training hyperparameters as a JSON object")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the endpoints' cosine-similarity penalty")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-examples", type=_optional_int, default=None)
    p.add_argument("--bn-batches", type=int, default=10)
    p.add_argument("--bn-batch-size", type=int, default=256)
    p.add_argument("--labels", type=_json, default={})
    _residual_option(p)
    p.add_argument("--out", required=True)

    p = verb("plot", _plot, "Draw figures from tidy tables (read once).", needs=("pandas", "lmc.plotting"),
             tensors=False)
    p.add_argument("--figure", nargs="+", required=True, help="figure names (lmc.plotting.FIGURES)")
    p.add_argument("--tables", nargs="+", required=True, help="CSV files; each is known by its file stem")
    p.add_argument("--options", type=_json, default={})
    p.add_argument("--out", nargs="+", required=True, help="one image path per figure, in the same order")
    return parser


def _load_tensor_stack(args: argparse.Namespace) -> None:
    """torch, its threads, the verb's device and matmul precision, for verbs that compute on tensors."""
    import torch

    from lmc.device import configure_precision, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    args.torch_device = resolve_device(args.device) if args.on_device else torch.device("cpu")
    configure_precision(tf32=args.tf32)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    from lmc.artifacts.files import ArtifactError

    ready, status = time.time(), "error"
    try:
        if args.tensors:
            _load_tensor_stack(args)
        for module in args.needs:
            importlib.import_module(module)
        ready = time.time()
        args.handler(args)
        status = "ok"
    except (ArtifactError, ValueError) as exc:  # lmc.permutation.SpecError is a ValueError
        # Expected failures (bad input files or options) get one clear line, not a traceback.
        logging.getLogger("lmc").debug("details", exc_info=True)
        raise SystemExit(f"lmc {args.verb}: error: {exc}") from None
    finally:
        timing.record(args.verb, ready, status)


def run() -> None:
    """``python -m lmc`` and the ``lmc`` script: :func:`main`, then end the process at once.

    Every output is already written (atomically) and closed when ``main`` returns; what the interpreter's
    normal teardown would add is seconds of unloading torch's modules and objects per process
    (``docs/benchmarks.md``, workflow section), which a workflow of many jobs pays each time. So the streams are
    flushed and the process exits with ``main``'s status without that teardown.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = exc.code or 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
