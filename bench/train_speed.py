"""Training speed: K seeds one after another with ``train`` vs one ``train_seeds`` block of K (stacked engine).

Both train the same MLPs (same seeds, initialisations, data orders, config) for a fixed number of epochs with no
early stop, so both do exactly the same number of SGD steps. The data are 10,000 Fashion-MNIST training images
(a stratified subset, read from Debian's ``dataset-fashion-mnist`` or a torchvision download folder); without
them, synthetic inputs of the same shape (Gaussian, 1x28x28, 10 random labels), which time the same. The number
of epochs defaults to the training budget of the default workflow (``training.mlp.max_epochs`` in
``config.yaml``), so that each seed's final evaluation has the share of a job's time it has there.

The last three columns time the training loops alone, up to each run's last epoch report: the final evaluation
of every seed on the training and test sets, the same work in both paths, is left out there.

    .venv/bin/python bench/train_speed.py                        # CPU, K = 8, 2 threads
    .venv/bin/python bench/train_speed.py --epochs 2 --repeats 1 # quicker
    .venv/bin/python bench/train_speed.py --device cuda --k 10   # GPU: K = 10 stacked vs K sequential runs

``--threads`` is the process's intra-op thread count: the sequential runs use it inside each op; the stacked
engine runs every op on one thread (what keeps a seed's weights independent of its block) and instead trains
that many sub-blocks side by side. Each path is timed in a fresh interpreter (after a warm-up there), as workflow
jobs run, ``--repeats`` times, the two paths taking turns; the table gives the fastest run of each path and the
lines below it every run. Time on an otherwise idle machine: other processes competing for the cores slow the
multithreaded sequential runs far more than the stacked block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from permlmc.data.dataset import load_dataset
from permlmc.data.prepare import prepare_dataset, write_prepared
from permlmc.models import Architecture
from permlmc.training.loop import TrainConfig, train
from permlmc.training.stacked import train_seeds

SHAPES = ["1x64", "1x256", "1x1024", "2x256"]
"""``DEPTHxWIDTH`` of the MLPs timed by default."""

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"


def workflow_epochs() -> int:
    """The default workflow's epoch budget for MLPs (``training.mlp.max_epochs`` of ``config.yaml``)."""
    return int(yaml.safe_load(DEFAULT_CONFIG.read_text())["training"]["mlp"]["max_epochs"])


def load_data(examples: int) -> tuple[str, tuple[torch.Tensor, torch.Tensor]]:
    """``(description, (x, y))``: Fashion-MNIST if it can be read, else synthetic data of its shape."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tensors, meta = prepare_dataset("fashion_mnist", root=tmp, train_subset=examples)
            write_prepared(Path(tmp) / "data.safetensors", tensors, meta)
            return f"Fashion-MNIST, {examples} training images", load_dataset(Path(tmp) / "data.safetensors").split(
                "train")
    except Exception as exc:  # any failure to find or read it: fall back, saying why
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(examples, 1, 28, 28, generator=g), torch.randint(0, 10, (examples,), generator=g)
        reason = str(exc).splitlines()[0]
        return f"synthetic, {examples} examples (Fashion-MNIST unavailable: {reason})", (x, y)


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_sequential(arch: Architecture, seeds: list[int], config: TrainConfig, xy: tuple,
                    device: str) -> tuple[float, float]:
    """(seconds in all, seconds of the training loops alone: each run up to its last epoch's report, before the
    final evaluation on the training and test sets)."""
    synchronise(device)
    start, loops = time.perf_counter(), 0.0
    for seed in seeds:
        began, ended = time.perf_counter(), [0.0]
        train(arch, seed, config, xy, xy, device=device,
              on_epoch=lambda record, ended=ended: ended.__setitem__(0, time.perf_counter()))
        loops += ended[0] - began
    synchronise(device)
    return time.perf_counter() - start, loops


def time_batched(arch: Architecture, seeds: list[int], config: TrainConfig, xy: tuple,
                 device: str) -> tuple[float, float]:
    """As :func:`time_sequential`, for one block: the loops end at the last report of any seed."""
    synchronise(device)
    start, ended = time.perf_counter(), [0.0]

    def on_epoch(seed: int, record: dict) -> None:
        ended[0] = max(ended[0], time.perf_counter())

    train_seeds(arch, seeds, config, xy, xy, device=device, engine="stacked", on_epoch=on_epoch)
    synchronise(device)
    return time.perf_counter() - start, ended[0] - start


def measure_here(args: argparse.Namespace) -> None:
    """Time one path on one shape (``--only``, ``--shapes D x W``) after a warm-up; print its times as JSON."""
    _, (x, y) = load_data(args.examples)
    depth, width = map(int, args.shapes[0].split("x"))
    arch = Architecture("mlp", depth, width, tuple(x.shape[1:]), 10)
    config = TrainConfig(lr=0.01, momentum=0.9, batch_size=args.batch_size, max_epochs=args.epochs, target_loss=0.0)
    seeds = list(range(1, args.k + 1))
    time_path = time_sequential if args.only == "sequential" else time_batched
    warm_up = TrainConfig(max_epochs=1, target_loss=0.0), (x[:256].to(args.device), y[:256].to(args.device))
    time_path(arch, seeds[:2], *warm_up, args.device)  # first-call costs (allocator, kernels) excluded
    print(json.dumps(time_path(arch, seeds, config, (x.to(args.device), y.to(args.device)), args.device)))


def measure_apart(args: argparse.Namespace, shape: str, path: str) -> tuple[float, float]:
    """:func:`measure_here` in a fresh interpreter: (seconds in all, seconds of the training loops)."""
    command = [sys.executable, __file__, "--only", path, "--shapes", shape, "--device", args.device,
               "--k", str(args.k), "--threads", str(args.threads), "--examples", str(args.examples),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    total, loops = json.loads(out.strip().splitlines()[-1])
    return float(total), float(loops)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--k", type=int, default=8, help="seeds per block")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads of the sequential runs")
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=workflow_epochs(),
                        help="epochs per seed (default: config.yaml's training.mlp.max_epochs)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path; the fastest is tabled")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shapes", nargs="+", default=SHAPES, metavar="DEPTHxWIDTH", help="MLPs to time")
    parser.add_argument("--only", choices=["sequential", "stacked"], help=argparse.SUPPRESS)  # one measurement
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only:
        measure_here(args)
        return
    description, (x, y) = load_data(args.examples)
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{cpu_model()} ({os.cpu_count()} logical CPUs)"
    print(f"Device: {device}; torch {torch.__version__}, {args.threads} threads for sequential runs; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print(f"Data: {description}; batch {args.batch_size}, {args.epochs} epochs, K = {args.k} seeds; "
          f"fastest of {args.repeats} runs of each path")
    steps = args.epochs * -(-len(x) // args.batch_size)
    print()
    print(f"| depth | width | {args.k} x train (s) | train_seeds block of {args.k} (s) | speed-up | "
          "stacked steps/s (all seeds) | loops only: sequential (s) | block (s) | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for shape in args.shapes:
        depth, width = map(int, shape.split("x"))
        # each path in a process of its own, as a workflow job runs: a stacked block leaves a process slower
        # for sequential runs after it (measured: up to 1.5x), which would flatter the speed-up
        times = runs[shape] = {"sequential": [], "stacked": []}
        for _ in range(args.repeats):
            for path in times:
                times[path].append(measure_apart(args, shape, path))
        (sequential, sequential_loops), (stacked, batched_loops) = (min(times[path]) for path in times)
        print(f"| {depth} | {width} | {sequential:.2f} | {stacked:.2f} | {sequential / stacked:.2f}x | "
              f"{steps * args.k / stacked:,.0f} | {sequential_loops:.2f} | {batched_loops:.2f} | "
              f"{sequential_loops / batched_loops:.2f}x |", flush=True)
    print()
    for shape, times in runs.items():
        listed = "; ".join(f"{path} " + ", ".join(f"{total:.2f} ({loops:.2f})" for total, loops in timed)
                           for path, timed in times.items())
        print(f"{shape}, every run, seconds in all (loops only): {listed}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
