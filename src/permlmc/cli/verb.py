"""What a verb is, and the argument types and option groups several verbs share.

A :class:`Verb` pairs the function a job runs with the arguments it accepts: every argument's ``dest`` is a
parameter of ``run``, so :func:`permlmc.cli.main.main` calls ``run(**arguments)`` with nothing renamed in between.
Verbs that compute on the configured device also get ``device`` (a ``torch.device``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verb:
    """One command, ``python -m permlmc <name>``, named like the workflow rule that runs it.

    ``tensors``: whether it computes on tensors (torch is loaded and ``--threads`` applied before it starts);
    ``device``: whether it computes on the configured ``--device`` (the others run where CUDA may be absent).
    """

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[..., None]
    tensors: bool = True
    device: bool = True


def json_object(text: str) -> dict[str, Any]:
    value = _json(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def json_objects(text: str) -> list[dict[str, Any]]:
    value = _json(text)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise argparse.ArgumentTypeError("expected a JSON list of objects")
    return value


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc


def method_path(text: str) -> tuple[str, str]:
    """A ``METHOD=PATH`` argument."""
    method, separator, path = text.partition("=")
    if not separator or not method or not path:
        raise argparse.ArgumentTypeError(f"expected METHOD=PATH, got {text!r}")
    return method, path


def optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "null", "") else int(text)


def alphas(text: str) -> list[float]:
    """``--alphas N``: N evenly spaced alphas in [0, 1] (:func:`permlmc.interpolation.setup.alpha_grid`)."""
    from permlmc.interpolation.setup import alpha_grid

    try:
        return alpha_grid(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def residual_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--residual", default="full", choices=["full", "internal"],
                        help="residual networks: permute whole residual streams (full) or only inside blocks")
    parser.add_argument("--expect", default=None, metavar="NETWORK",
                        help="fail unless the checkpoints are this network, e.g. mlp-d1-w16")


def curve_options(parser: argparse.ArgumentParser) -> None:
    """The alphas and evaluation subsets of interpolation curves, and the BatchNorm treatment along them."""
    alphas_option(parser)
    parser.add_argument("--train-examples", type=optional_int, default=None, help="train examples of each curve")
    parser.add_argument("--test-examples", type=optional_int, default=None, help="test examples of each curve")
    parser.add_argument("--labels", type=json_object, default={}, help="identity columns recorded in the tables")
    parser.add_argument("--bn-modes", nargs="+", default=["interpolate"],
                        help="BatchNorm treatment along the path: interpolate, reset, repair (BN networks only)")
    statistics_options(parser)
    parser.add_argument("--temperature-scaled", action="store_true",
                        help="also loss_temperature_scaled: the cross-entropy at a softmax temperature fitted per "
                             "network on the train split")
    parser.add_argument("--stacked", action="store_true",
                        help="evaluate all alphas in one vmapped pass (pays on GPUs and for small networks)")


def data_option(parser: argparse.ArgumentParser) -> None:
    """``--data``: the prepared dataset a verb reads (``resources/datasets/{dataset}.safetensors``)."""
    parser.add_argument("--data", dest="data_path", metavar="DATA", required=True)


def alphas_option(parser: argparse.ArgumentParser, help: str = "points along the path") -> None:
    """``--alphas N``: N evenly spaced alphas in [0, 1], 11 by default."""
    parser.add_argument("--alphas", type=alphas, default=alphas("11"), metavar="N", help=help)


def rows_options(parser: argparse.ArgumentParser) -> None:
    """``--labels`` (identity columns given to every row) and ``--out``: the JSON file of table rows a verb writes."""
    parser.add_argument("--labels", type=json_object, default={}, help="identity columns recorded in the table")
    parser.add_argument("--out", required=True)


def method_arguments(p: argparse.ArgumentParser) -> None:
    """``--method``, its ``--options`` and the ``--seed`` of its search stream: the search of every search verb."""
    p.add_argument("--method", required=True)
    p.add_argument("--options", type=json_object, default={}, help="search options as a JSON object")
    p.add_argument("--seed", type=int, default=0, help="seed of the search stream")


def statistics_options(parser: argparse.ArgumentParser) -> None:
    """The training batches BatchNorm statistics are re-estimated on (``reset``/``repair``, weight averages)."""
    parser.add_argument("--bn-batches", type=int, default=10, help="training batches BatchNorm statistics are "
                        "re-estimated on (networks with BatchNorm)")
    parser.add_argument("--bn-batch-size", type=int, default=256)


def search_examples_option(parser: argparse.ArgumentParser) -> None:
    """``--search-examples``: the training subset a data-based search reads (the curves have ``--train-examples``)."""
    parser.add_argument("--search-examples", metavar="N", type=optional_int, default=None,
                        help="training examples the search reads (SA energy, activations; none = all)")
