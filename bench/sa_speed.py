"""Simulated-annealing speed: steps per second of three implementations of one SA step, side by side.

(a) reference: the paper's code's way of computing the energy (App. A.4). Every energy evaluation rebuilds an
    ``nn.Module`` for each of the three networks (A, permuted B, their midpoint), loads its state dict and runs it
    over a ``torch.utils.data.DataLoader``; a step evaluates once, so three network passes per step.
(b) library, ``energy="full"``: one functional forward pass of the midpoint per step (the endpoint term is a
    constant computed once).
(c) library, ``energy="incremental"``: the cached midpoint activations updated after each move.
(d), (e) library, incremental and full, with rounds of up to ``--candidates`` moves evaluated in one vectorised pass
    (:mod:`permlmc.search.annealing.rounds`; the default on a GPU). The acceptance column says how many of the
    steps were accepted moves: rounds pay off where most moves are rejected.

All three anneal the same MLP pair under simanneal with the same fixed schedule. The inputs are synthetic
(Gaussian, 784 features as 1x28x28, labels drawn at random): enough for timing, not for accuracy. Steps per second
count only the annealing loop (after the first energy), not setup.

    .venv/bin/python bench/sa_speed.py                 # width 64, depths 1 and 2, 10,000 examples
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from typing import Any

import numpy as np
import torch
from simanneal import Annealer
from torch.utils.data import DataLoader, TensorDataset

from permlmc.evaluation import functional_forward
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.models.mlp import MLP
from permlmc.search import SearchData, get_search
from permlmc.training.loop import initialise

SCHEDULE = {"tmax": 0.05, "tmin": 1e-4}
"""Fixed temperatures (energy units) for every path, so that all of them do the same kind of run."""
UPDATES = 10
"""Progress reports per run (each reports the acceptance rate since the previous one)."""


def permute_mlp(params: dict[str, torch.Tensor], perms: list[np.ndarray], depth: int) -> dict[str, torch.Tensor]:
    """B with hidden layer ``i``'s units reordered by ``perms[i]``, written out layer by layer as the reference
    code does (a new dict; the inputs stay untouched)."""
    out = dict(params)
    for i, perm in enumerate(perms):
        p = torch.from_numpy(perm)
        out[f"hidden.{i}.weight"] = out[f"hidden.{i}.weight"][p]
        out[f"hidden.{i}.bias"] = out[f"hidden.{i}.bias"][p]
        following = f"hidden.{i + 1}.weight" if i + 1 < depth else "head.weight"
        out[following] = out[following][:, p]
    return out


class ReferenceAnnealer(Annealer):
    """(a): energy = midpoint error - mean endpoint error, each from a freshly built and loaded module."""

    copy_strategy = "deepcopy"

    def __init__(self, arch: Architecture, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                 loader: DataLoader, rng: np.random.Generator) -> None:
        super().__init__(initial_state=[np.arange(arch.width) for _ in range(arch.depth)])
        self.arch, self.a, self.b, self.loader, self.rng = arch, a, b, loader, rng
        self.loop_start = 0.0

    def move(self) -> None:
        for p in self.state:
            i, j = self.rng.choice(len(p), size=2, replace=False)
            p[i], p[j] = p[j], p[i]

    def error(self, params: dict[str, torch.Tensor]) -> float:
        arch = self.arch
        model = MLP(int(np.prod(arch.input_shape)), arch.width, arch.depth, arch.num_classes)
        model.load_state_dict(params)
        model.to(next(iter(params.values())).device)
        model.eval()
        wrong = 0
        with torch.no_grad():
            for x, y in self.loader:
                wrong += int((model(x).argmax(1) != y).sum())
        return wrong / len(self.loader.dataset)  # type: ignore[arg-type]

    def energy(self) -> float:
        permuted = permute_mlp(self.b, self.state, self.arch.depth)
        midpoint = {k: (self.a[k] + permuted[k]) / 2 for k in self.a}
        ends = (self.error(self.a) + self.error(permuted)) / 2
        return self.error(midpoint) - ends

    def update(self, step: int, *args: Any) -> None:
        if step == 0:
            self.loop_start = time.perf_counter()


def time_reference(arch: Architecture, a: dict, b: dict, x: torch.Tensor, y: torch.Tensor, steps: int,
                   batch_size: int) -> float:
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    annealer = ReferenceAnnealer(arch, a, b, loader, np.random.default_rng(0))
    annealer.set_schedule({**SCHEDULE, "steps": steps, "updates": 1})
    random.seed(0)
    annealer.anneal()
    return steps / (time.perf_counter() - annealer.loop_start)


def time_library(arch: Architecture, a: dict, b: dict, data: SearchData, steps: int, energy: str,
                 candidates: int) -> tuple[float, float]:
    """(steps/s, fraction of steps accepted) of the library's SA."""
    marks: dict[str, Any] = {"accepted": []}

    def progress(record: dict[str, Any]) -> None:
        if record["event"] == "schedule":
            marks["path"] = record["energy"]
        elif record["event"] == "step" and record["step"] == 0:
            marks["start"] = time.perf_counter()
        elif record["event"] == "step":
            marks["accepted"].append(record["acceptance"])
        elif record["event"] == "done":
            marks["end"] = time.perf_counter()

    get_search("sa")(permutation_spec(arch), a, b, data=data, generator=torch.Generator().manual_seed(0),
                     schedule="custom", steps=steps, updates=UPDATES, energy=energy, metric="error",
                     candidates=candidates, progress=progress, **SCHEDULE)
    assert marks["path"] == energy, f"the library took the {marks['path']} path"
    return float(steps / (marks["end"] - marks["start"])), float(np.mean(marks["accepted"]))


def trained_pair(arch: Architecture, x: torch.Tensor, epochs: int) -> tuple[torch.Tensor, dict, dict]:
    """Labels a random linear teacher assigns to ``x`` and two networks (seeds 0, 1) fitted to them by Adam: a
    pair whose SA runs like one on real networks (acceptance falling as the search settles), on synthetic data."""
    g = torch.Generator().manual_seed(7)
    teacher = torch.randn(x[0].numel(), arch.num_classes, generator=g).to(x.device)
    y = (x.flatten(1) @ teacher).argmax(1)
    states = []
    for seed in (0, 1):
        model = initialise(arch, seed).to(x.device)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        order = torch.Generator(device=x.device).manual_seed(seed)
        for _ in range(epochs):
            for batch in torch.randperm(len(x), device=x.device, generator=order).split(256):
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
        states.append({k: v.detach() for k, v in model.state_dict().items()})
    return y, states[0], states[1]


def time_calibrated(arch: Architecture, a: dict, b: dict, data: SearchData, steps: int,
                    candidates: int) -> tuple[float, float, float]:
    """(steps/s, fraction accepted, best energy) of the library's SA under the calibrated schedule."""
    marks: dict[str, Any] = {"accepted": []}

    def progress(record: dict[str, Any]) -> None:
        if record["event"] == "step" and record["step"] == 0:
            marks["start"] = time.perf_counter()
        elif record["event"] == "step":
            marks["accepted"].append(record["acceptance"])
        elif record["event"] == "done":
            marks["end"], marks["best"] = time.perf_counter(), record["best_energy"]

    get_search("sa")(permutation_spec(arch), a, b, data=data, generator=torch.Generator().manual_seed(0),
                     schedule="calibrated", steps=steps, updates=UPDATES, energy="incremental", metric="error",
                     candidates=candidates, progress=progress)
    return (float(steps / (marks["end"] - marks["start"])), float(np.mean(marks["accepted"])),
            float(marks["best"]))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--examples", type=int, default=10_000, help="size of the energy set")
    parser.add_argument("--batch-size", type=int, default=128, help="DataLoader batch of the reference")
    parser.add_argument("--steps", type=int, nargs=3, default=[40, 300, 5000], metavar=("REF", "FULL", "INCR"),
                        help="SA steps timed for (a), (b), (c)")
    parser.add_argument("--candidates", type=int, default=32, help="largest round of moves for (d) and (e)")
    parser.add_argument("--trained-epochs", type=int, default=0,
                        help="also time the calibrated schedule on a pair trained this many epochs (0: skip)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu or cuda: data and weights live there for all three")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.examples, 1, 28, 28, generator=g).to(device)
    y = torch.randint(0, 10, (args.examples,), generator=g).to(device)
    gpu = f"; GPU: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs){gpu}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; device {device}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"Energy set: {args.examples} synthetic examples (Gaussian inputs, 784 features, random labels); "
          f"MLP width {args.width}; metric: error; reference DataLoader batch {args.batch_size}")
    rows: list[tuple[int, str, int, float, float | None]] = []
    for depth in args.depths:
        arch = Architecture("mlp", depth, args.width, (1, 28, 28), 10)
        a, b = ({k: v.to(device) for k, v in initialise(arch, seed).state_dict().items()} for seed in (0, 1))
        data = SearchData(functional_forward(build_model(arch).to(device)), x, y)
        ref, full, incremental = args.steps
        rows.append((depth, "(a) reference", ref, time_reference(arch, a, b, x, y, ref, args.batch_size), None))
        rounds = f"rounds of <= {args.candidates}"
        for name, steps, energy, candidates in (
            ("(b) library full", full, "full", 1),
            ("(c) library incremental", incremental, "incremental", 1),
            (f"(d) library incremental, {rounds}", incremental, "incremental", args.candidates),
            (f"(e) library full, {rounds}", incremental, "full", args.candidates),
        ):
            rows.append((depth, name, steps, *time_library(arch, a, b, data, steps, energy, candidates)))
    print()
    print("| depth | implementation | steps timed | steps/s | vs (a) | accepted |")
    print("|---|---|---:|---:|---:|---:|")
    for depth, name, steps, rate, accepted in rows:
        reference = next(r for d, n, _, r, _ in rows if d == depth and n.startswith("(a)"))
        share = "" if accepted is None else f"{accepted:.2f}"
        print(f"| {depth} | {name} | {steps} | {rate:,.1f} | {rate / reference:,.1f}x | {share} |")
    if args.trained_epochs:
        print()
        print(f"Trained pair (labels of a random linear teacher, Adam for {args.trained_epochs} epochs), calibrated "
              f"schedule, incremental energy, {args.steps[2]} steps:")
        print()
        print("| depth | loop | steps/s | vs one move per step | accepted | best energy |")
        print("|---|---|---:|---:|---:|---:|")
        for depth in args.depths:
            arch = Architecture("mlp", depth, args.width, (1, 28, 28), 10)
            labels, a, b = trained_pair(arch, x, args.trained_epochs)
            data = SearchData(functional_forward(build_model(arch).to(device)), x, labels)
            single = time_calibrated(arch, a, b, data, args.steps[2], 1)
            rounds = time_calibrated(arch, a, b, data, args.steps[2], args.candidates)
            for name, (rate, accepted, best) in (("one move per step", single),
                                                 (f"rounds of <= {args.candidates}", rounds)):
                print(f"| {depth} | {name} | {rate:,.1f} | {rate / single[0]:.2f}x | {accepted:.2f} | {best:.4f} |")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
