"""Whether a network trained, read from its checkpoint sidecar: the check every result that rests on a trained
network carries with it.

A barrier between two networks that never learned is ~0 (both predict one class everywhere, and so does every
point between them): it looks like connectivity and is not. A network is judged from its checkpoint sidecar's
final training metrics:

- ``no``: its final train error is at least :data:`NEAR_CHANCE` of chance (``1 - 1/classes``), or its train loss is
  not finite: it did not learn, and a barrier measured on it says nothing about connectivity;
- ``short``: it stopped at the epoch cap with a train loss more than :data:`SHORT_FACTOR` times its target: it
  learned, but is not the trained network the protocol asks for (results describe a network part-way through);
- ``yes``: otherwise. Checkpoints the workflow did not train (imported ones) have no target: only ``no`` applies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

NEAR_CHANCE = 0.9
"""Share of chance error (``1 - 1/classes``) from which a network counts as not having learned."""
SHORT_FACTOR = 10.0
"""A capped network whose final train loss exceeds this multiple of ``target_loss`` counts as short of it."""
VERDICTS = ("yes", "short", "no")


def training_verdict(meta: Mapping[str, Any]) -> tuple[str, str]:
    """``(verdict, why)`` for the checkpoint sidecar ``meta`` (module doc); ``why`` is empty for ``yes``."""
    final, classes = meta["final"], int(meta["architecture"]["num_classes"])
    loss, error = float(final["train_loss"]), float(final["train_error"])
    chance = 1 - 1 / classes
    if not math.isfinite(loss):
        return "no", f"train loss {loss}"
    if error >= NEAR_CHANCE * chance:
        return "no", f"train error {error:.2f}, chance {chance:.2f}"
    target = (meta.get("training") or {}).get("target_loss")
    if target and meta.get("stopped_by") == "max_epochs" and loss > SHORT_FACTOR * target:
        return "short", f"train loss {loss:.3g} > {SHORT_FACTOR:g} x target {target:g}"
    return "yes", ""
