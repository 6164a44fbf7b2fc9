"""Model names: a family, or a family and a normalisation other than its default (``vgg_ln``, ``resnet_none``).

Kept apart from :mod:`permlmc.models` (and free of torch) so that table and figure code can read names cheaply.
"""

from __future__ import annotations

NORM_SEPARATOR = "_"
"""Between a family and its normalisation in a model name."""

CIFAR_RESNET_DEPTHS = (20, 32, 44, 56)
"""Depths 6n + 2 of the three-stage CIFAR ResNet (He et al. 2015, §4.2), sized by a width multiplier k (width 16 k)."""


def split_model_name(name: str) -> tuple[str, str | None]:
    """``(family, norm)`` of a model name; ``norm`` is None when the name has no suffix (the family's default)."""
    family, _, norm = name.partition(NORM_SEPARATOR)
    return family, norm or None


def cifar_resnet(name: str, depth: int) -> bool:
    """Whether model ``name`` at ``depth`` is a CIFAR ResNet (three stages), labelled by its width multiplier."""
    return split_model_name(name)[0] == "resnet" and depth in CIFAR_RESNET_DEPTHS
