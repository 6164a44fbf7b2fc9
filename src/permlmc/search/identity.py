"""The identity permutation: the barrier "before" any search."""

from __future__ import annotations

from typing import Any

import torch

from permlmc.permutation import PermutationSpec, identity
from permlmc.search.base import Progress, SearchData
from permlmc.types import Permutation, StateDict


def search(
    spec: PermutationSpec,
    params_a: StateDict,
    params_b: StateDict,
    *,
    data: SearchData | None = None,
    generator: torch.Generator,
    progress: Progress | None = None,
    **options: Any,
) -> Permutation:
    if options:
        raise TypeError(f"method 'none' takes no options, got {sorted(options)}")
    return identity(spec, params_b)
