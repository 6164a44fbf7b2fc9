"""Permutation specs of any ``nn.Module``: derived from its traced graph, then verified on the network itself."""

from permlmc.tracing.context import TraceError
from permlmc.tracing.derive import Derivation, TraceOptions, derive_spec

__all__ = ["Derivation", "TraceError", "TraceOptions", "derive_spec"]
