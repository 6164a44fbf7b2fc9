"""The training verb, ``train-seeds`` (rules ``train_seeds_<seeds>``): one block of seeds of one network."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from permlmc.artifacts.checkpoints import save_checkpoint
from permlmc.artifacts.files import sha256
from permlmc.artifacts.provenance import provenance
from permlmc.cli.progress import Bar
from permlmc.cli.verb import Verb, data_option, json_object
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU
from permlmc.models import Architecture
from permlmc.training.loop import TrainConfig
from permlmc.training.resume import ResumeFile
from permlmc.training.stacked import train_seeds
from permlmc.types import PathLike

log = logging.getLogger("permlmc")


def train_config(text: str) -> TrainConfig:
    return TrainConfig.from_dict(json_object(text))


def arguments(p: argparse.ArgumentParser) -> None:
    data_option(p)
    p.add_argument("--arch", dest="model_name", metavar="ARCH", required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--factory", default=None, metavar="MODULE:FUNCTION",
                   help="a network of your own: its factory (--arch is then its name in paths)")
    p.add_argument("--trace-options", type=json_object, default={},
                   help="with --factory: how its spec is traced, {\"entrywise\": [...], \"pinned\": {key: [axes]}}")
    p.add_argument("--factory-kwargs", type=json_object, default={}, help="keyword arguments of --factory (JSON)")
    p.add_argument("--seed", dest="seeds", metavar="SEED", type=int, nargs="+", required=True,
                   help="one or more seeds, trained in one block")
    p.add_argument("--engine", default="auto", choices=["auto", "stacked", "sequential"],
                   help="stacked: one block of MLP seeds (SGD only); auto picks by architecture, device and "
                        "optimizer, never by block")
    p.add_argument("--config", type=train_config, default=TrainConfig(),
                   help="training hyperparameters as a JSON object")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="save a resumable state every N epochs (0: never); a rerun resumes from it")
    p.add_argument("--out", dest="outs", metavar="OUT", nargs="+", required=True,
                   help="one checkpoint path per seed, in the same order")


def run_train(
    data_path: PathLike, model_name: str, depth: int, width: int, seeds: Sequence[int], config: TrainConfig,
    outs: Sequence[PathLike], *, checkpoint_every: int = 0, device: torch.device = CPU, engine: str = "auto",
    factory: str | None = None, factory_kwargs: dict[str, Any] | None = None,
    trace_options: dict[str, Any] | None = None,
) -> None:
    """Train networks ``seeds`` (one checkpoint in ``outs`` each) in one process: MLPs trained with SGD as one
    stacked block (:mod:`permlmc.training.stacked`; a seed's weights do not depend on its block), other families
    and AdamW one after the other. With ``checkpoint_every`` > 0 each seed keeps a resumable state next to its
    checkpoint (removed once the checkpoint is written), so rerunning a killed job continues where it stopped."""
    if len(seeds) != len(outs) or len(set(seeds)) != len(seeds):
        raise ValueError(f"give one output per seed and no seed twice: seeds {list(seeds)}, outputs {list(outs)}")
    data = load_dataset(data_path)
    arch = Architecture(model_name, depth, width, data.input_shape, data.num_classes, factory, factory_kwargs or {},
                        trace_options or {})
    out_of = {seed: Path(out) for seed, out in zip(seeds, outs, strict=True)}
    resumes = {seed: ResumeFile(out.with_name("train_state.safetensors"), checkpoint_every)
               for seed, out in out_of.items()} if checkpoint_every else {}
    bar = Bar(config.max_epochs * len(seeds), f"training {arch.name} seeds {seeds[0]}-{seeds[-1]}", "epoch")

    def on_epoch(seed: int, r: dict[str, Any]) -> None:
        if bar.shown:  # one bar over the block's epochs (a seed that stops early leaves its rest undone)
            bar.advance(seed=seed, loss=f"{r['train_loss']:.4f}")
        else:
            log.info("seed %d epoch %d lr %.4g train loss %.4f err %.4f", seed, r["epoch"], r["lr"],
                     r["train_loss"], r["train_error"])

    start = time.perf_counter()
    with bar:
        results = train_seeds(arch, seeds, config, data.split("train"), data.split("test"), device=device,
                              engine=engine, resume=resumes.get if resumes else None, on_epoch=on_epoch)
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


VERBS = {
    "train-seeds": Verb("Train seeds of one network with its protocol (SGD of the paper's Table 1, or AdamW), "
                        "as one block.",
                        arguments, run_train),
}
