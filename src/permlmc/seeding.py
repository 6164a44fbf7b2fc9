"""Stable seed derivation: every random stream is ``SeedSequence([seed, purpose offset, ...])``.

Offsets are fixed integers (never ``hash()`` of a string, which changes between processes), so the same
seed gives the same stream in every process and on every machine.
"""

from __future__ import annotations

import numpy as np
import torch

INIT = 0
DATA_ORDER = 1
PERMUTED_COPY = 2
SEARCH = 3  # a search's random stream (its examples: data.subsets.Purpose.SEARCH_EXAMPLES)
EVAL_SUBSET = 4
LABEL_NOISE = 5
INDEPENDENT_PAIRS = 6


def derive(seed: int, purpose: int, *extra: int) -> int:
    """A 63-bit integer seed for ``(seed, purpose, *extra)``."""
    state = np.random.SeedSequence([int(seed), int(purpose), *map(int, extra)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def generator(seed: int, purpose: int, *extra: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive(seed, purpose, *extra))
