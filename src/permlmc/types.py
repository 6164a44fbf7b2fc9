"""Type aliases shared across the library."""

from torch import Tensor

StateDict = dict[str, Tensor]
"""A model's parameters and buffers by state-dict key."""

Permutation = dict[str, Tensor]
"""Permutation name -> int64 index tensor of shape (n,); unit j of the result is unit perm[j] of the input."""
