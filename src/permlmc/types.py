"""Type aliases shared across the library (free of torch at run time: table and figure code imports them too)."""

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

StateDict = dict[str, "Tensor"]
"""A model's parameters and buffers by state-dict key."""

Permutation = dict[str, "Tensor"]
"""Permutation name -> int64 index tensor of shape (n,); unit j of the result is unit perm[j] of the input."""

PathLike = str | os.PathLike[str]
"""A file or folder path as callers give it."""
