"""The verb ``check-spec``: derive the permutation spec of a user's network, verify it, and report."""

from __future__ import annotations

import argparse

from permlmc.cli.verb import Verb, json_object
from permlmc.types import PathLike


def _pin(text: str) -> tuple[str, int]:
    key, separator, axis = text.rpartition(":")
    if not separator or not axis.isdigit():
        raise argparse.ArgumentTypeError(f"expected KEY:AXIS, got {text!r}")
    return key, int(axis)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="MODULE:FUNCTION",
                   help="factory returning the nn.Module, importable from the working directory")
    p.add_argument("--kwargs", type=json_object, default={}, help="keyword arguments of the factory (JSON)")
    shape = p.add_mutually_exclusive_group(required=True)
    shape.add_argument("--input-shape", type=int, nargs="+", help="one example's shape, e.g. 3 32 32")
    shape.add_argument("--data", dest="data_path", metavar="DATA", help="a prepared dataset: its shape and classes")
    shape.add_argument("--dataset", help="a dataset name (fashion_mnist, cifar10, ...): its shape and classes")
    p.add_argument("--image-size", type=int, default=None, help="with --dataset: images resized to this size")
    p.add_argument("--classes", type=int, default=10, help="with --input-shape: num_classes, if the factory takes it")
    p.add_argument("--depth", type=int, default=None, help="passed to the factory if it takes depth")
    p.add_argument("--width", type=int, default=None, help="passed to the factory if it takes width")
    p.add_argument("--input-dtype", default="float32", choices=["float32", "int64"],
                   help="int64 for token ids (drawn below --vocabulary)")
    p.add_argument("--vocabulary", type=int, default=2, help="token ids are drawn from range(VOCABULARY)")
    p.add_argument("--batch", type=int, default=2, help="examples in the traced batch")
    p.add_argument("--entrywise", nargs="*", default=[], help="module paths or class names acting entrywise")
    p.add_argument("--pin", nargs="*", type=_pin, default=[], metavar="KEY:AXIS", help="axes left in place")
    p.add_argument("--checkpoint", dest="checkpoints", nargs="*", default=[], metavar="PATH",
                   help="state dicts (.pt, .safetensors) that must fit the network")
    p.add_argument("--json", dest="out", default=None, metavar="OUT", help="also write the report as JSON")


def _shape(input_shape: list[int] | None, data_path: PathLike | None, dataset: str | None, image_size: int | None,
           classes: int) -> tuple[tuple[int, ...], int]:
    import json

    from permlmc.artifacts.files import sidecar_path
    from permlmc.data.readers import prepared_shape

    if data_path is not None:
        meta = json.loads(sidecar_path(data_path).read_text())
        return tuple(meta["input_shape"]), int(meta["num_classes"])
    if dataset is not None:
        return prepared_shape(dataset, image_size)
    assert input_shape is not None
    return tuple(input_shape), classes


def run_check_spec(
    model: str, kwargs: dict, *, input_shape: list[int] | None = None, data_path: PathLike | None = None,
    dataset: str | None = None, image_size: int | None = None, classes: int = 10, depth: int | None = None,
    width: int | None = None, input_dtype: str = "float32", vocabulary: int = 2, batch: int = 2,
    entrywise: list[str] | None = None, pin: list[tuple[str, int]] | None = None,
    checkpoints: list[str] | None = None, out: PathLike | None = None,
) -> None:
    """Derive, verify and print; a spec that changes the function, a network the tracer refuses or a checkpoint
    that does not fit the network is an error."""
    import torch

    from permlmc.artifacts.files import write_json
    from permlmc.artifacts.provenance import provenance
    from permlmc.models.user import build_network, check_state, load_state
    from permlmc.tracing import TraceOptions, derive_spec
    from permlmc.tracing.report import report_data, report_text
    from permlmc.tracing.verify import require_verified, verify_spec

    shape, num_classes = _shape(input_shape, data_path, dataset, image_size, classes)
    grid = {"depth": depth, "width": width, "num_classes": num_classes, "in_channels": shape[0],
            "input_shape": shape}
    network = build_network(model, kwargs, **{k: v for k, v in grid.items() if v is not None})
    for path in checkpoints or []:
        check_state(network, load_state(path), path)
    generator = torch.Generator().manual_seed(0)
    size = (batch, *shape)
    example = (torch.randint(0, vocabulary, size, generator=generator) if input_dtype == "int64"
               else torch.randn(size, generator=generator))
    pinned: dict[str, tuple[int, ...]] = {}
    for key, axis in pin or []:
        pinned[key] = (*pinned.get(key, ()), axis)
    derivation = derive_spec(network, example, TraceOptions(entrywise=tuple(entrywise or ()), pinned=pinned))
    report = verify_spec(network, derivation.spec, example, fixed=derivation.fixed)
    print(f"derived in {derivation.seconds:.2f} s")
    print(report_text(report, model))
    if out is not None:
        write_json(out, {"model": model, "kwargs": kwargs, "input_shape": list(shape), "num_classes": num_classes,
                         "depth": depth, "width": width, **report_data(derivation.spec, report, derivation.seconds),
                         "provenance": provenance()})
    require_verified(report, model)


VERBS = {
    "check-spec": Verb("Derive a network's permutation spec from its traced graph, verify it, and report.",
                       arguments, run_check_spec, device=False),
}
