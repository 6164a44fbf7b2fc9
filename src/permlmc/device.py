"""Where tensors live and how precisely a GPU multiplies them.

Results must not depend on the machine: a GPU's TF32 tensor cores round float32 matrix products and
convolutions to a 10-bit mantissa, which shifts losses and barriers in their fourth digit and differs between
GPU generations. :func:`configure_precision` therefore turns TF32 off unless asked for.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N")

CPU = torch.device("cpu")
"""The default device of every job function."""
"""Accepted values of a device option (``N``: a GPU index)."""


def resolve_device(name: str) -> torch.device:
    """The device called ``name``: ``auto`` is the first GPU when CUDA is available and the CPU otherwise.

    Raises ``ValueError`` naming ``name`` when it is not one of :data:`DEVICE_NAMES`, or when it asks for a
    GPU that this machine does not have (rather than silently running on the CPU).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device {name!r} is unknown; choose one of {DEVICE_NAMES}") from error
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"device {name!r} is unknown; choose one of {DEVICE_NAMES}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asks for a GPU, but CUDA is not available here (try 'cpu' or 'auto')")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {name!r} asks for GPU {device.index}, but only {count} GPU(s) are visible")
    return device


def configure_precision(tf32: bool = False) -> None:
    """Allow (``tf32=True``) or forbid TF32 in CUDA matrix products and cuDNN convolutions, process-wide.

    PyTorch's defaults differ between the two (cuDNN allows TF32, matmul does not); both are set here so that
    float32 means float32 everywhere. No effect on CPU computations.
    """
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def to_device(tensors: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """A copy of ``tensors`` (a state dict, say) on ``device``; entries already there are shared, not copied."""
    return {key: value.to(device) for key, value in tensors.items()}
