"""Where a conv pair job's time goes, phase by phase, on the trained networks of a finished run.

For every network directory of ``--run`` with checkpoints ``seed1`` and ``seed2`` (optionally only those matching
``--networks``), in one process and one thread: loading the data and building the curve setup, weight matching,
one evaluation of one network on the curve subsets (the unit every curve point costs), and each BatchNorm mode's
curve between seed 1 and seed 2 after weight matching, alpha by alpha (the default) and stacked. The curve settings
(alphas, subsets, statistics batches) are those the run's own pair jobs used, read from the network's
``pairs/real/1-2/none/barrier.json``. A time is the best of ``--repeats`` runs after a warm-up.

    .venv/bin/python bench/pair_phases.py --run runs/conv_evidence
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from permlmc.artifacts.checkpoints import load_checkpoint
from permlmc.artifacts.files import read_json
from permlmc.data.dataset import load_dataset
from permlmc.device import CPU
from permlmc.evaluation import evaluate, functional_forward
from permlmc.interpolation.path import interpolation_curve
from permlmc.interpolation.setup import curve_setup
from permlmc.models import permutation_spec
from permlmc.permutation import apply_permutation
from permlmc.search import get_search


def best(run: Callable[[], object], repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def phases(network: Path, data: Path, args: argparse.Namespace) -> dict[str, float]:
    """Seconds of each phase for one network (keys: setup, weight_matching, evaluate, then per mode and path)."""
    arch, a, _ = load_checkpoint(network / "seed1" / "model.safetensors")
    _, b, _ = load_checkpoint(network / "seed2" / "model.safetensors", expect=arch)
    job = read_json(network / "pairs" / "real" / "1-2" / "none" / "barrier.json")
    spec = permutation_spec(arch, job["residual"])
    statistics = job["bn_statistics"] or {"batches": 1, "batch_size": 1}
    out: dict[str, float] = {}
    start = time.perf_counter()
    setup = curve_setup(arch, load_dataset(data, device=CPU), alphas=job["alphas"],
                        train_examples=job["evaluated_on"]["train"]["examples"],
                        test_examples=job["evaluated_on"]["test"]["examples"],
                        bn_modes=("interpolate", "reset", "repair"), bn_batches=statistics["batches"],
                        bn_batch_size=statistics["batch_size"], stacked=False, device=CPU)
    out["setup"] = time.perf_counter() - start
    search = get_search("weight_matching")
    out["weight_matching"] = best(lambda: search(spec, a, b, generator=torch.Generator().manual_seed(0)), 1)
    b_perm = apply_permutation(spec, search(spec, a, b, generator=torch.Generator().manual_seed(0)), b)
    forward = functional_forward(setup.model)
    out["evaluate"] = best(lambda: [evaluate(forward, a, x, y, 4096) for x, y in setup.splits.values()],
                           args.repeats)
    for mode in setup.modes:
        for stacked in (False, True):
            out[f"{mode}{' stacked' if stacked else ''}"] = best(lambda mode=mode, stacked=stacked: interpolation_curve(
                setup.model, a, b_perm, setup.alphas, setup.splits, bn_mode=mode, batches=setup.batches,
                stacked=stacked), args.repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="working directory of a finished run")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--networks", nargs="*", default=None, help="network directory names (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = args.run / "resources" / "datasets" / f"{args.dataset}.safetensors"
    found = sorted(p.parent.parent for p in (args.run / "results" / args.dataset).glob("*/seed2/model.safetensors"))
    networks = [n for n in found if args.networks is None or n.name in args.networks]
    rows = [(n.name, phases(n, data, args)) for n in networks]
    columns = list(dict.fromkeys(key for _, row in rows for key in row))
    print(f"torch {torch.__version__}, 1 thread; curve settings of each network's pair jobs\n")
    print("| network | " + " | ".join(f"{c} (s)" for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}" if c in row else "–" for c in columns) + " |")


if __name__ == "__main__":
    main()
