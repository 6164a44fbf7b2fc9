"""A training loss that is not a number stops training: what a diverged run would save is not a network. Whether a
finished network learned is judged from its sidecar (:mod:`permlmc.artifacts.trained`)."""

from __future__ import annotations

import math


class TrainingDiverged(ArithmeticError):
    """A training loss became NaN or infinite: training stops rather than save a network that is not one."""


def require_finite(loss: float, network: str, epoch: int, lr: float) -> None:
    """Raise :class:`TrainingDiverged` naming ``network``, the 1-based ``epoch`` and ``lr`` when ``loss`` is not
    finite."""
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"{network}: the mean training loss of epoch {epoch} is {loss} at learning rate {lr:g}; training "
            f"diverged. Lower training.lr (or the dataset's override) and rerun.")
