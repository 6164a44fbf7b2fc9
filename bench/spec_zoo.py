"""Derived permutation specs of torchvision networks: derivation, verification and planted recovery, model by model.

For each of ``--models`` (torchvision constructors, ``weights=None``, ``num_classes=10``, built after
``torch.manual_seed(--seed)``) and one seeded input batch of ``--batch`` images of ``--size`` x ``--size``: the spec is
derived from the traced network (``permlmc.tracing.derive_spec``) and verified on it
(``permlmc.tracing.verify.verify_spec``: every permutation alone on perturbed weights, then all at once, in float64;
"largest deviation" is the largest output change relative to the largest output over those checks, "ok" whether all
are within the float64 rounding tolerance). The planted check permutes A by a random permutation ``P``
(B = apply_permutation(spec, P, A)) and runs weight matching from A to B: it must return ``invert(P)`` exactly
(every name compared with ``torch.equal``); "units recovered" is ``permlmc.permutation.agreement`` pooled over all
units. A is the network's state perturbed as verification perturbs it (``permlmc.tracing.verify.perturbed``): a
freshly initialised network's BatchNorm entries are all 1 or 0, which leaves weight matching, started from the
identity, no anchor in the deep ResNets (``--as-initialised`` measures that case: resnet50 and mobilenet_v2 then
end in a local optimum far from ``P``). Each time is one run. A model that cannot be handled gets a row naming
the exception and its message.

    .venv/bin/python bench/spec_zoo.py                                  # the five networks, 64x64, 2 threads
    .venv/bin/python bench/spec_zoo.py --models resnet18 --size 32 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torchvision
from torch import nn

from permlmc.permutation import agreement, apply_permutation, invert, random_permutation
from permlmc.search import get_search
from permlmc.tracing import derive_spec
from permlmc.tracing.verify import perturbed, verify_spec

MODELS = ("resnet18", "resnet50", "vgg11_bn", "mobilenet_v2", "densenet121", "vit_b_16")
COLUMNS = ("model", "params (M)", "permutations", "share permuted", "derive (s)", "verify (s)", "largest deviation",
           "verified ok", "planted recovery", "units recovered", "weight matching (s)")


def build(name: str, seed: int, side: int) -> nn.Module:
    """``name`` as torchvision builds it (a ViT for images of side ``side``, a multiple of its patch side)."""
    torch.manual_seed(seed)
    size = {"image_size": side} if name.startswith("vit_") else {}
    model: nn.Module = getattr(torchvision.models, name)(weights=None, num_classes=10, **size)
    return model.eval()


def row(name: str, args: argparse.Namespace) -> list[str]:
    """One table row for ``name`` (the columns of :data:`COLUMNS`)."""
    model = build(name, args.seed, args.size)
    example = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed))
    millions = f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}"
    try:
        derivation = derive_spec(model, example)
        report = verify_spec(model, derivation.spec, example, fixed=derivation.fixed)
    except Exception as exc:  # a row that says why, not a traceback
        message = " ".join(str(exc).split()).replace("|", "/")
        return [name, millions, f"failed: {type(exc).__name__}: {message}"] + [""] * (len(COLUMNS) - 3)
    spec = derivation.spec
    state = {key: value.detach() for key, value in model.state_dict().items()}
    if not args.as_initialised:
        state = perturbed(state, torch.Generator().manual_seed(args.seed))
    planted = random_permutation(spec, state, torch.Generator().manual_seed(args.seed + 1))
    permuted = apply_permutation(spec, planted, state)
    start = time.perf_counter()
    found = get_search("weight_matching")(spec, state, permuted, generator=torch.Generator().manual_seed(args.seed))
    matching = time.perf_counter() - start
    truth = invert(planted)
    exact = set(found) == set(truth) and all(torch.equal(found[n].cpu(), truth[n]) for n in truth)
    deviation = max([report.joint_deviation, *(c.deviation for c in report.checks)])
    return [name, millions, str(len(spec.names)), f"{100 * report.parameter_share:.4f} %", f"{derivation.seconds:.2f}",
            f"{report.seconds:.2f}", f"{deviation:.1e}", "yes" if report.ok else f"no ({', '.join(report.failed)})",
            "yes" if exact else "no", f"{agreement(found, truth)['all']:.3f}", f"{matching:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="torchvision.models constructor names")
    parser.add_argument("--size", type=int, default=64, help="input height and width")
    parser.add_argument("--batch", type=int, default=2, help="examples in the input batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--as-initialised", action="store_true",
                        help="plant on the network as initialised (constant BatchNorm entries), not perturbed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {platform.processor() or 'cpu'}, "
          f"{args.threads} threads ({os.cpu_count()} cores), input {args.batch}x3x{args.size}x{args.size}\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * (len(COLUMNS) - 1))
    for name in args.models:
        print("| " + " | ".join(row(name, args)) + " |", flush=True)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
