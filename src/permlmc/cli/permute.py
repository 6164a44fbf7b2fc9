"""The verb of our model S′, ``permute-copies`` (rule ``permute_copies``): random permutations of one network."""

from __future__ import annotations

import argparse

from permlmc.artifacts.checkpoints import load_checkpoint, save_checkpoint, save_permutation
from permlmc.artifacts.provenance import provenance
from permlmc.cli.verb import Verb, data_option, residual_options
from permlmc.data.dataset import load_dataset
from permlmc.evaluation import functional_forward
from permlmc.models import build_model, permutation_spec
from permlmc.studies.permuted_copies import NotTheSameFunction, permuted_copy
from permlmc.types import PathLike


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", dest="model_path", metavar="MODEL", required=True)
    data_option(p)
    p.add_argument("--copies", type=int, required=True)
    residual_options(p)
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed max |logit difference|")
    p.add_argument("--out", dest="out_model", metavar="OUT", required=True,
                   help="checkpoint path template with a {copy} field")
    p.add_argument("--permutation-out", dest="out_permutation", metavar="OUT", required=True,
                   help="permutation path template with a {copy} field")


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
        try:
            made = permuted_copy(spec, state, forward, x, seed=int(meta["seed"]), copy=copy, tolerance=tolerance)
        except NotTheSameFunction as exc:
            raise NotTheSameFunction(f"{model_path}: {exc}") from exc
        common = {"source": str(model_path), "source_sha256": meta["sha256"], "copy": copy, "residual": residual,
                  "provenance": provenance()}
        permutation_path = out_permutation.format(copy=copy)
        save_permutation(permutation_path, spec, made.permutation, {"method": "random", **common})
        save_checkpoint(out_model.format(copy=copy), arch, made.state, {
            **{k: meta[k] for k in ("seed", "dataset", "training", "epochs", "steps", "stopped_by", "final")},
            "kind": "model", "permutation": permutation_path, "max_logit_difference": made.max_logit_difference,
            **common,
        })


VERBS = {
    "permute-copies": Verb("Write randomly permuted copies of a checkpoint (the paper's S').", arguments,
                           run_permute, device=False),
}
