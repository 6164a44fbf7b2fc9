"""Types shared by every search algorithm."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from permlmc.evaluation import Forward
from permlmc.permutation import PermutationSpec
from permlmc.types import Permutation, StateDict

Progress = Callable[[dict[str, Any]], None]
"""Receives one record per reported step (e.g. ``{"step": 10, "energy": 0.2}``)."""
Features = Callable[[StateDict, Tensor], dict[str, Tensor]]
"""``features(params, x)``: per permutation name, the post-activation values of its units on inputs ``x``, as
(samples, units) (see :mod:`permlmc.search.features`)."""


@dataclass(frozen=True)
class SearchData:
    """Network function and a fixed training subset, for searches that evaluate the model."""

    forward: Forward
    x: Tensor
    y: Tensor
    features: Features | None = None
    """Unit activations, for searches that match units by what they compute (activation matching)."""


class Search(Protocol):
    def __call__(
        self,
        spec: PermutationSpec,
        params_a: StateDict,
        params_b: StateDict,
        *,
        data: SearchData | None = None,
        generator: torch.Generator,
        progress: Progress | None = None,
        **options: Any,
    ) -> Permutation: ...
