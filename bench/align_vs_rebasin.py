"""Aligning one torchvision network to another by weight matching: permlmc against the peer tool ``rebasin`` (PyPI,
by snimu), side by side in one run.

For each of ``--models`` (torchvision constructors, ``weights=None``, ``num_classes=10``; A built after
``torch.manual_seed(0)``, B after ``torch.manual_seed(1)``, both in eval mode) and one input batch of 2 images of
``--size`` x ``--size``, each tool permutes B into A's basin by weight matching:

* rebasin: ``PermutationCoordinateDescent(A, B, example)`` (traces both networks with torchview: "setup"), then
  ``calculate_permutations()`` and ``apply_permutations()`` ("matching"; B is permuted in place);
* permlmc: ``derive_spec`` ("setup"), ``verify_spec`` ("verify"), then weight matching and ``apply_permutation`` of
  B's state dict ("matching"): what ``permlmc.api.align`` does.

Each tool runs in its own fresh process (``--timeout`` seconds at most) with ``--threads`` threads; each time is one
run. Then, per tool: the share of B's state-dict entries whose values changed (``torch.equal`` before/after) and of
B's parameter elements in changed entries, the largest absolute change of B's logits on 8 random inputs in eval
mode (a correct alignment keeps the function, up to float32 reordering of sums; in brackets relative to the largest
logit, which is what to read: untrained networks can have tiny logits), and the parameter distance to A after the
alignment relative to before. "permlmc / rebasin" is the ratio of total times.
Untrained BatchNorm layers hold constant entries (weight 1, bias 0, mean 0, variance 1) that no permutation changes
and no misplacement shows; ``--norm-noise`` draws them at random (weights and variances in [0.5, 1.5], biases and
means of scale 0.1), as in a trained network, so the changed shares and the logit check cover them too.

``--pin KEY:AXIS`` (repeatable) adds a row "permlmc, pinned" per model: the same alignment with those axes, and every
axis tied to them, left in place (``TraceOptions(pinned=...)``), to compare both tools on the same work where rebasin
leaves some streams alone.

rebasin is installed apart from the venv (torch and torchvision come from the venv), e.g.::

    .venv/bin/python -m pip install --no-deps --target /tmp/rebasin rebasin torchview graphviz
    .venv/bin/python bench/align_vs_rebasin.py --rebasin-path /tmp/rebasin      # or REBASIN_PATH=/tmp/rebasin
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

MODELS = ("resnet18", "resnet50", "mobilenet_v2")
COLUMNS = ("model", "tool", "setup (s)", "verify (s)", "matching (s)", "total (s)", "entries changed",
           "param elements changed", "max logit change (relative)", "distance to A after/before", "permlmc / rebasin")


def build(name: str, seed: int, norm_noise: bool) -> nn.Module:
    """The network; with ``norm_noise`` its BatchNorm weights, biases and statistics drawn at random (module doc)."""
    torch.manual_seed(seed)
    model: nn.Module = getattr(torchvision.models, name)(weights=None, num_classes=10)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)] if norm_noise else []
    with torch.no_grad():
        for m in norms:
            for entry in ("weight", "running_var"):
                getattr(m, entry).uniform_(0.5, 1.5)
            for entry in ("bias", "running_mean"):
                getattr(m, entry).normal_(0, 0.1)
    return model.eval()


def distance(a: dict[str, Tensor], b: dict[str, Tensor], keys: list[str]) -> float:
    return sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in keys) ** 0.5


def align_rebasin(a: nn.Module, b: nn.Module, example: Tensor, path: str) -> dict[str, float]:
    sys.path.append(path)  # at the end: the venv's torch wins
    from rebasin import PermutationCoordinateDescent

    torch.manual_seed(0)  # rebasin draws its sweep order from the global generator
    start = time.perf_counter()
    pcd = PermutationCoordinateDescent(a, b, example)
    setup = time.perf_counter()
    pcd.calculate_permutations()
    pcd.apply_permutations()
    return {"setup": setup - start, "matching": time.perf_counter() - setup}


def align_permlmc(a: nn.Module, b: nn.Module, example: Tensor, pins: list[str]) -> dict[str, float]:
    from permlmc.permutation import apply_permutation
    from permlmc.search import get_search
    from permlmc.tracing import TraceOptions, derive_spec
    from permlmc.tracing.verify import require_verified, verify_spec

    pinned: dict[str, tuple[int, ...]] = {}
    for pin in pins:
        key, axis = pin.rsplit(":", 1)
        pinned[key] = (*pinned.get(key, ()), int(axis))
    start = time.perf_counter()
    derivation = derive_spec(a, example, TraceOptions(pinned=pinned))
    derived = time.perf_counter()
    require_verified(verify_spec(a, derivation.spec, example, fixed=derivation.fixed), type(a).__name__)
    verified = time.perf_counter()
    state_a = {k: v.detach() for k, v in a.state_dict().items()}
    state_b = {k: v.detach() for k, v in b.state_dict().items()}
    perm = get_search("weight_matching")(derivation.spec, state_a, state_b, generator=torch.Generator().manual_seed(0))
    b.load_state_dict(apply_permutation(derivation.spec, perm, state_b))
    return {"setup": derived - start, "verify": verified - derived, "matching": time.perf_counter() - verified}


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Align B to A with ``args.worker`` (in this process) and measure the result (module doc)."""
    torch.set_num_threads(args.threads)
    a, b = build(args.models[0], 0, args.norm_noise), build(args.models[0], 1, args.norm_noise)
    example = torch.randn(2, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    inputs = torch.randn(8, 3, args.size, args.size, generator=torch.Generator().manual_seed(2))
    before = {k: v.detach().clone() for k, v in b.state_dict().items()}
    state_a = {k: v.detach().clone() for k, v in a.state_dict().items()}
    with torch.no_grad():
        logits = b(inputs)
    times = align_rebasin(a, b, example, args.rebasin_path) if args.worker == "rebasin" else \
        align_permlmc(a, b, example, args.pin if args.worker == "pinned" else [])
    after = {k: v.detach() for k, v in b.state_dict().items()}
    with torch.no_grad():
        change = float((b.eval()(inputs) - logits).abs().max())
    params = {name: p.numel() for name, p in b.named_parameters()}
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    keys = list(params)
    return {**times, "total": sum(times.values()), "entries": len(changed) / len(before),
            "elements": sum(params.get(k, 0) for k in changed) / sum(params.values()),
            "logit": change, "largest": float(logits.abs().max()),
            "distance": distance(state_a, after, keys) / distance(state_a, before, keys)}


def run(tool: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The worker's measurements for ``tool`` on ``name`` in a fresh process, or ``{"error": why}``."""
    if tool == "rebasin" and not args.rebasin_path:
        return {"error": "no --rebasin-path (or REBASIN_PATH) given"}
    command = [sys.executable, __file__, "--worker", tool, "--models", name, "--size", str(args.size),
               "--threads", str(args.threads), "--rebasin-path", args.rebasin_path or ""] + \
        (["--norm-noise"] if args.norm_noise else []) + [f"--pin={pin}" for pin in args.pin]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"not finished after {args.timeout} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or [f"exit {done.returncode}"]
        return {"error": f"failed: {tail[0]}"}
    return dict(json.loads(lines[-1]))


def cells(name: str, tool: str, got: dict[str, Any], ratio: str) -> list[str]:
    if "error" in got:
        message = " ".join(str(got["error"]).split()).replace("|", "/")
        return [name, tool, message] + [""] * (len(COLUMNS) - 3)
    return [name, tool, f"{got['setup']:.2f}", f"{got['verify']:.2f}" if "verify" in got else "–",
            f"{got['matching']:.2f}", f"{got['total']:.2f}", f"{got['entries']:.3f}", f"{got['elements']:.3f}",
            f"{got['logit']:.1e} ({got['logit'] / got['largest']:.1e})", f"{got['distance']:.3f}", ratio]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="torchvision.models constructor names")
    parser.add_argument("--size", type=int, default=64, help="input height and width")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, for both tools")
    parser.add_argument("--timeout", type=int, default=300, help="seconds one tool may take on one model")
    parser.add_argument("--rebasin-path", default=os.environ.get("REBASIN_PATH"),
                        help="folder rebasin, torchview and graphviz were installed into (default: $REBASIN_PATH)")
    parser.add_argument("--norm-noise", action="store_true",
                        help="random BatchNorm weights, biases and statistics in A and B (module doc)")
    parser.add_argument("--pin", action="append", default=[], metavar="KEY:AXIS",
                        help="an axis to leave in place in an extra row 'permlmc, pinned' (module doc); repeatable")
    parser.add_argument("--worker", choices=("rebasin", "permlmc", "pinned"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        try:
            print(json.dumps(worker(args)))
        except Exception as exc:  # the row says why
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads "
          f"({os.cpu_count()} cores), input 2x3x{args.size}x{args.size}, per-tool timeout {args.timeout} s"
          f"{', random BatchNorm entries' if args.norm_noise else ''}\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---:|" * (len(COLUMNS) - 2))
    for name in args.models:
        theirs, ours = run("rebasin", name, args), run("permlmc", name, args)
        ratio = f"{ours['total'] / theirs['total']:.2f}" if "total" in ours and "total" in theirs else "–"
        print("| " + " | ".join(cells(name, "rebasin", theirs, "")) + " |")
        print("| " + " | ".join(cells(name, "permlmc", ours, ratio)) + " |", flush=True)
        if args.pin:
            pinned = run("pinned", name, args)
            ratio = f"{pinned['total'] / theirs['total']:.2f}" if "total" in pinned and "total" in theirs else "–"
            print("| " + " | ".join(cells(name, "permlmc, pinned", pinned, ratio)) + " |", flush=True)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
