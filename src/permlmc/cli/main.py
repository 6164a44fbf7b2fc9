"""Command line: ``python -m permlmc [options] <verb> ...``, one verb per workflow step, named like its rule.

``VERBS`` maps every verb to the module that declares it (its arguments beside the function it runs, see
:class:`permlmc.cli.verb.Verb`). Only that module is imported, so a table or figure verb never loads torch, and a
tensor verb loads it before its clock starts (:mod:`permlmc.cli.timing`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from permlmc.cli import timing
from permlmc.cli.verb import Verb

VERBS: dict[str, str] = {
    "prepare-dataset": "permlmc.cli.data",
    "fetch-data": "permlmc.cli.data",
    "train-seeds": "permlmc.cli.training",
    "permute-copies": "permlmc.cli.permute",
    "search-pairs": "permlmc.cli.search_pairs",
    "search-pair": "permlmc.cli.search_pair",
    "interpolate-pair": "permlmc.cli.interpolate_pair",
    "tabulate-barriers": "permlmc.cli.tables",
    "tabulate-models": "permlmc.cli.tables",
    "tabulate-study": "permlmc.cli.tables",
    "tabulate-paper-table": "permlmc.cli.tables",
    "compare-all-pairs": "permlmc.cli.all_pairs",
    "search-group": "permlmc.cli.groups",
    "check-theorem": "permlmc.cli.theorem",
    "compare-ensembles": "permlmc.cli.ensembles",
    "compare-layers": "permlmc.cli.layers",
    "merge-models": "permlmc.cli.merging",
    "compare-spawns": "permlmc.cli.spawning",
    "compare-epochs": "permlmc.cli.spawning",
    "plot-figures": "permlmc.cli.figures",
    "check-spec": "permlmc.cli.spec",
    "import-checkpoints": "permlmc.cli.imports",
}
"""Verb -> the module whose ``VERBS`` declares it (a test checks that the two agree)."""

RENAMED = {"train": "train-seeds", "permute": "permute-copies", "search": "search-pair", "barrier": "interpolate-pair",
           "tabulate-rows": "tabulate-study", "all-pairs": "compare-all-pairs", "group-search": "search-group",
           "theorem": "check-theorem", "ensembles": "compare-ensembles", "plot": "plot-figures"}
"""Earlier names of verbs, for a helpful error."""


def global_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="permlmc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="verbs: " + ", ".join(VERBS) + "\n`python -m permlmc VERB --help` describes one.")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default=os.environ.get("LMC_DEVICE", "cpu"),
                        help="cpu, cuda, cuda:N or auto (default: $LMC_DEVICE, else cpu)")
    parser.add_argument("--tf32", action="store_true",
                        help="allow TF32 matmuls on GPUs (faster; off by default so results match full fp32)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("verb", metavar="VERB", help="one of the verbs below")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the verb's arguments")
    return parser


def find_verb(name: str) -> Verb:
    """The declaration of verb ``name``, importing only its module."""
    if name not in VERBS:
        hint = f"; it is now {RENAMED[name]!r}" if name in RENAMED else ""
        raise SystemExit(f"permlmc: unknown verb {name!r}{hint}; choose from {', '.join(VERBS)}")
    verb: Verb = importlib.import_module(VERBS[name]).VERBS[name]
    return verb


def verb_parser(name: str, verb: Verb) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"permlmc {name}", description=verb.help)
    verb.arguments(parser)
    return parser


def _tensor_device(options: argparse.Namespace, verb: Verb) -> Any:
    """torch, its threads and matmul precision; the device for verbs that compute on it (None for the others)."""
    import torch

    from permlmc.device import configure_precision, resolve_device

    if options.threads:
        torch.set_num_threads(options.threads)
    configure_precision(tf32=options.tf32)
    return resolve_device(options.device) if verb.device else None


def main(argv: Sequence[str] | None = None) -> None:
    options = global_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if options.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    from permlmc.artifacts.files import ArtifactError

    ready, status = time.time(), "error"
    try:
        verb = find_verb(options.verb)
        device = _tensor_device(options, verb) if verb.tensors else None
        arguments = vars(verb_parser(options.verb, verb).parse_args(options.arguments))
        if device is not None:
            arguments["device"] = device
        ready = time.time()
        verb.run(**arguments)
        status = "ok"
    except (ArtifactError, ValueError) as exc:  # permlmc.axes.SpecError is a ValueError
        # Expected failures (bad input files or options) get one clear line, not a traceback.
        logging.getLogger("permlmc").debug("details", exc_info=True)
        raise SystemExit(f"permlmc {options.verb}: error: {exc}") from None
    finally:
        timing.record(options.verb, ready, status)


def run() -> None:
    """``python -m permlmc`` and the ``permlmc`` script: :func:`main`, then end the process at once.

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
