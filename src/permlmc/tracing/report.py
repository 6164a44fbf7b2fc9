"""A spec report as text (for the terminal) and as plain data (for a JSON sidecar)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from permlmc.permutation import PermutationSpec
from permlmc.tracing.verify import SpecReport


def report_data(spec: PermutationSpec, report: SpecReport, derive_seconds: float | None = None) -> dict[str, Any]:
    """Everything the report shows, JSON-ready: per check (a permutation, or a heads group's head order) its units,
    deviation, share of parameters and where it acts; the heads groups; every axis left in place with its reason."""
    return {
        "ok": report.ok,
        "tolerance": report.tolerance,
        "joint_deviation": report.joint_deviation,
        "parameter_share": report.parameter_share,
        "derive_seconds": derive_seconds,
        "verify_seconds": report.seconds,
        "permutations": [
            {"name": c.name, "units": c.units, "deviation": c.deviation, "parameter_share": c.parameter_share,
             "acts_on": [[s.key, s.axis, s.start, s.block] for name in c.moves for s in spec.stretches[name]]}
            for c in report.checks
        ],
        "heads": [{"members": list(group.members), "head_size": group.head_size} for group in spec.heads],
        "fixed": [{"key": key, "axis": axis, "reason": reason} for (key, axis), reason in report.fixed.items()],
    }


def report_text(report: SpecReport, title: str) -> str:
    """A table of the permutations, the axes left in place grouped by reason, and the verdict."""
    names = {name for check in report.checks for name in check.moves}
    lines = [f"{title}: {len(names)} permutations on {report.parameter_share:.1%} of the parameters; "
             f"verified in {report.seconds:.2f} s (tolerance {report.tolerance:.1e})",
             f"{'permutation':<40} {'units':>6} {'deviation':>10} {'params':>8}"]
    for c in report.checks:
        mark = "" if c.deviation <= report.tolerance else "  CHANGES THE FUNCTION"
        lines.append(f"{c.name:<40} {c.units:>6} {c.deviation:>10.1e} {c.parameter_share:>8.1%}{mark}")
    lines.append(f"all permutations at once: deviation {report.joint_deviation:.1e}")
    reasons = Counter(reason.split(" (")[0] for reason in report.fixed.values())
    if reasons:
        lines.append("axes left in place:")
        for reason, count in reasons.most_common():
            first = next(f"{k}[{a}]" for (k, a), r in report.fixed.items() if r.split(" (")[0] == reason)
            lines.append(f"  {count:>4} x {reason} (e.g. {first})")
    lines.append("OK: every permutation leaves the function unchanged" if report.ok
                 else f"FAILED: {', '.join(report.failed) or 'the joint draw'} change the function")
    return "\n".join(lines)
