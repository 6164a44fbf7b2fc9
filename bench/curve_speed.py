"""Interpolation-curve speed, side by side on the same networks and data: the reference style (what the paper's
code does: per alpha an ``nn.Module`` built and loaded with the interpolated state dict, BatchNorm statistics
re-estimated in train mode for ``reset``, evaluation over a ``DataLoader`` of batch 128 with per-batch host
reads), the library's own alpha-by-alpha loop, the library's default (the loop, with a linear input layer
computed for the endpoints only and mixed for every alpha: ``permlmc.interpolation.input_layer``; MLPs only) and the
stacked curve (all alphas stacked, one vectorised forward per data chunk; for an MLP with the input layer mixed from the
endpoints as in the default). On the CPU the library caps the rows of a forward
(``permlmc.interpolation.path.cpu_rows``).

Cases: an MLP (one hidden layer of width 64 and 1024, 784 inputs, 10,000 examples, BatchNorm mode ``interpolate``)
and a narrow VGG-11 and ResNet-18 (3x32x32 inputs, 2,000 examples, BatchNorm mode ``reset``, statistics
re-estimated on 4 batches of 256). Inputs are synthetic (Gaussian, random labels): enough for timing. Each curve
has 11 alphas; a time is the best of ``--repeats`` runs after one warm-up run, and includes everything
``interpolation_curve`` does (interpolating, re-estimating statistics, evaluating, copying results to the host).

    .venv/bin/python bench/curve_speed.py                    # CPU, one thread
    .venv/bin/python bench/curve_speed.py --device cuda      # the same on a GPU (TF32 off unless --tf32)
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from permlmc.device import configure_precision, resolve_device, to_device
from permlmc.interpolation.path import interpolation_curve
from permlmc.models import Architecture, build_model
from permlmc.training.loop import initialise
from permlmc.types import StateDict

ALPHAS = [i / 10 for i in range(11)]
REFERENCE_BATCH = 128
T = TypeVar("T")


def best_time(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Best wall time (s) of ``repeats`` runs after a warm-up one, and the curve."""
    result = run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def reference_curve(arch: Architecture, a: StateDict, b: StateDict, x: Tensor, y: Tensor, bn_mode: str,
                    batches: list[Tensor]) -> list[float]:
    """The reference style (module doc): loss and error at every alpha, as one flat list."""
    loader = DataLoader(TensorDataset(x, y), batch_size=REFERENCE_BATCH)
    values: list[float] = []
    for alpha in ALPHAS:
        model = build_model(arch).to(x.device)
        model.load_state_dict({k: torch.lerp(v, b[k], alpha) if v.is_floating_point() else v for k, v in a.items()})
        with torch.no_grad():
            if bn_mode == "reset":
                for module in model.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.reset_running_stats()
                        module.momentum = None
                model.train()
                for batch in batches:
                    model(batch)
            model.eval()
            loss, wrong = 0.0, 0
            for inputs, targets in loader:
                logits = model(inputs)
                loss += F.cross_entropy(logits, targets, reduction="sum").item()
                wrong += int((logits.argmax(1) != targets).sum().item())
        values += [loss / len(x), wrong / len(x)]
    return values


def time_case(arch: Architecture, examples: int, bn_mode: str, device: torch.device, repeats: int,
              batch_size: int) -> tuple[float, float, float, float, float]:
    """(reference, loop, default and stacked seconds, max relative difference of the curve values from the
    loop's)."""
    g = torch.Generator().manual_seed(0)
    model = build_model(arch)
    a = to_device(initialise(arch, 0).state_dict(), device)
    b = to_device(initialise(arch, 1).state_dict(), device)
    x = torch.randn(examples, *arch.input_shape, generator=g).to(device)
    y = torch.randint(0, arch.num_classes, (examples,), generator=g).to(device)
    batches = [torch.randn(256, *arch.input_shape, generator=g).to(device) for _ in range(4)]
    runs = {
        name: lambda stacked=stacked, shortcut=shortcut: interpolation_curve(
            model, a, b, ALPHAS, {"test": (x, y)}, bn_mode=bn_mode,
            batches=batches if bn_mode != "interpolate" else (), stacked=stacked, batch_size=batch_size,
            shortcut=shortcut)
        for name, stacked, shortcut in (("loop", False, False), ("default", False, True), ("stacked", True, True))
    }
    reference, reference_values = best_time(lambda: reference_curve(arch, a, b, x, y, bn_mode, batches), 1)
    loop, loop_points = best_time(runs["loop"], repeats)
    default, default_points = best_time(runs["default"], repeats)
    stacked, stacked_points = best_time(runs["stacked"], repeats)
    difference = max(abs(p.value - q.value) / max(abs(p.value), 1e-12)
                     for other in (default_points, stacked_points) for p, q in zip(loop_points, other, strict=True))
    loop_values = [p.value for p in loop_points]
    difference = max(difference, *(abs(p - q) / max(abs(p), 1e-12)
                                   for p, q in zip(loop_values, reference_values, strict=True)))
    return reference, loop, default, stacked, difference


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or "unknown"
    return f"CPU: {name} ({os.cpu_count()} logical CPUs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on the GPU (off: float32 throughout)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per path (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=4096, help="rows per forward (both paths)")
    parser.add_argument("--mlp-widths", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--conv-width", type=int, default=8, help="first-stage channels of VGG-11 and ResNet-18")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    configure_precision(tf32=args.tf32)
    cases = [(Architecture("mlp", 1, w, (1, 28, 28), 10), 10_000, "interpolate") for w in args.mlp_widths]
    cases += [(Architecture(family, depth, args.conv_width, (3, 32, 32), 10), 2_000, "reset")
              for family, depth in (("vgg", 11), ("resnet", 18))]
    print(f"{machine(device)}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads, TF32 "
          f"{'on' if args.tf32 else 'off'}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"{len(ALPHAS)} alphas; {args.batch_size} rows per forward; best of {args.repeats} runs after a warm-up")
    print()
    print("| network | examples | bn mode | reference (s) | loop (s) | default (s) | stacked (s) | loop / default "
          "| loop / stacked | reference / default | reference / stacked | max rel. difference |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arch, examples, bn_mode in cases:
        reference, loop, default, stacked, difference = time_case(arch, examples, bn_mode, device, args.repeats,
                                                                  args.batch_size)
        print(f"| {arch.name} | {examples:,} | {bn_mode} | {reference:.3f} | {loop:.3f} | {default:.3f} "
              f"| {stacked:.3f} | {loop / default:.2f}x | {loop / stacked:.2f}x | {reference / default:.2f}x "
              f"| {reference / stacked:.2f}x | {difference:.1e} |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
