"""How far two CPU cores add up for the stacked engine's work: one sub-block's step alone against two side by side.

The stacked engine (``permlmc.training.stacked``) runs every op of a block on one thread and uses the cores by
training sub-blocks side by side in Python threads. This script times, for a width-``--width`` MLP and
sub-blocks of ``--seeds`` seeds, (1) the step's two large products alone (``bmm`` of the forward pass and of the
weight gradient) and (2) the whole step (``mlp_gradients`` and the SGD update), each on one thread and then as
two threads side by side. "share of 2x" is how much of the ideal doubling two cores give: 2.00 means they add
up; the last column is the whole step's time per seed with both cores busy, which shows what the sub-block size
(``permlmc.training.stacked.SUB_BLOCK_BYTES``) buys. Synthetic data; weights from ``permlmc.training.loop.initialise``.

    .venv/bin/python bench/core_scaling.py             # width 256, 2 and 4 seeds per sub-block, 150 steps
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable

import torch

from permlmc.models import Architecture
from permlmc.training.kernels import Layout, Workspace, gather_batches, mlp_gradients, sgd_step
from permlmc.training.loop import TrainConfig, initialise


def products(width: int, seeds: int, batch: int) -> Callable[[int], None]:
    a, w = torch.randn(seeds, batch, 784), torch.randn(seeds, 784, width)
    d, out = torch.randn(seeds, width, batch), torch.empty(seeds, width, 784)

    def run(steps: int) -> None:
        for _ in range(steps):
            torch.bmm(a, w)
            torch.bmm(d, a, out=out)

    return run


def whole_step(width: int, seeds: int, batch: int) -> Callable[[int], None]:
    arch = Architecture("mlp", 1, width, (1, 28, 28), 10)
    x, y = torch.randn(10_000, 1, 28, 28), torch.randint(0, 10, (10_000,))
    config = TrainConfig()

    def run(steps: int) -> None:
        layout = Layout.of(initialise(arch, 0).state_dict())
        params = layout.pack([initialise(arch, s).state_dict() for s in range(seeds)], "cpu")
        grads, momenta, work = torch.zeros_like(params), None, Workspace()
        views, grad_views = layout.views(params), layout.views(grads)
        totals = torch.zeros(seeds, dtype=torch.float64), torch.zeros(seeds, dtype=torch.int64)
        for _ in range(steps):
            index = torch.randint(0, len(x), (seeds, batch))
            mlp_gradients(views, grad_views, *gather_batches(x, y, index), totals, work)
            momenta = sgd_step(params, grads, momenta, 0.01, config)

    return run


def per_step(run: Callable[[int], None], steps: int, threads: int) -> float:
    """Seconds per step of each of ``threads`` copies of ``run`` started together."""
    def on_one_thread(steps: int) -> None:
        # OpenMP/MKL thread counts are per thread: a new thread that calls MKL directly (a bare bmm) would use
        # every core unless it sets its own
        torch.set_num_threads(1)
        run(steps)

    run(3)  # warm-up
    workers = [threading.Thread(target=on_one_thread, args=(steps,)) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 4], help="seeds per sub-block")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the stacked engine runs every op
    print(f"{os.cpu_count()} logical CPUs; torch {torch.__version__}; width {args.width}, batch {args.batch}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print()
    print("| seeds per sub-block | work | one thread (ms/step) | two side by side (ms/step) | share of 2x | "
          "two side by side, per seed (ms) |")
    print("|---:|---|---:|---:|---:|---:|")
    for seeds in args.seeds:
        for name, make in (("two large products", products), ("whole step", whole_step)):
            run = make(args.width, seeds, args.batch)
            alone, together = per_step(run, args.steps, 1), per_step(run, args.steps, 2)
            print(f"| {seeds} | {name} | {alone * 1e3:.2f} | {together * 1e3:.2f} | {2 * alone / together:.2f} | "
                  f"{together / (2 * seeds) * 1e3:.3f} |")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
