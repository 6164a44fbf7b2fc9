"""The verb ``import-checkpoints`` (rule ``import_checkpoints``): a user's own trained networks as the seeds of one
network of the workflow, each checked to fit the model and measured on the prepared dataset."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from permlmc.artifacts.checkpoints import save_checkpoint
from permlmc.artifacts.files import sha256
from permlmc.artifacts.provenance import provenance
from permlmc.cli.verb import Verb, data_option, json_object
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU
from permlmc.evaluation import evaluate, functional_forward
from permlmc.models import Architecture, build_model
from permlmc.models.user import check_state, load_state
from permlmc.types import PathLike


def arguments(p: argparse.ArgumentParser) -> None:
    data_option(p)
    p.add_argument("--arch", dest="model_name", metavar="NAME", required=True, help="the network's name in paths")
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--factory", required=True, metavar="MODULE:FUNCTION")
    p.add_argument("--trace-options", type=json_object, default={},
                   help="with --factory: how its spec is traced, {\"entrywise\": [...], \"pinned\": {key: [axes]}}")
    p.add_argument("--factory-kwargs", type=json_object, default={})
    p.add_argument("--checkpoint", dest="sources", nargs="+", required=True, metavar="PATH",
                   help="the user's state dicts, one per seed, seeds 1, 2, ... in this order")
    p.add_argument("--out", dest="outs", metavar="OUT", nargs="+", required=True, help="one checkpoint per source")


@torch.no_grad()
def run_import(
    data_path: PathLike, model_name: str, depth: int, width: int, factory: str, sources: Sequence[PathLike],
    outs: Sequence[PathLike], *, factory_kwargs: dict | None = None, trace_options: dict | None = None,
    device: torch.device = CPU,
) -> None:
    """Write each source as the workflow's checkpoint of seed 1, 2, ... with its train and test metrics."""
    if len(sources) != len(outs):
        raise ValueError(f"give one output per checkpoint: {len(sources)} checkpoints, {len(outs)} outputs")
    data = load_dataset(data_path, device)
    arch = Architecture(model_name, depth, width, data.input_shape, data.num_classes, factory, factory_kwargs or {},
                        trace_options or {})
    model = build_model(arch).to(device)
    forward = functional_forward(model)
    for seed, (source, out) in enumerate(zip(sources, outs, strict=True), start=1):
        given = load_state(source)
        check_state(model, given, source)
        state = {key: given[key].to(device=device, dtype=value.dtype) for key, value in model.state_dict().items()}
        train, test = evaluate(forward, state, *data.split("train")), evaluate(forward, state, *data.split("test"))
        save_checkpoint(out, arch, {k: v.cpu() for k, v in state.items()}, {
            "kind": "real", "seed": seed,
            "dataset": {"name": data.name, "path": str(data_path), "sha256": sha256(data_path)},
            "training": None, "epochs": 0, "steps": 0, "stopped_by": "imported",
            "imported_from": {"path": str(source), "sha256": sha256(source)},
            "final": {"train_loss": train.loss, "train_error": train.error, "test_loss": test.loss,
                      "test_error": test.error},
            "history": [], "provenance": provenance(device),
        })


VERBS = {
    "import-checkpoints": Verb("Take a user's own trained networks as the seeds of one network.", arguments,
                               run_import),
}
