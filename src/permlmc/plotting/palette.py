"""How every category is drawn and named: colours, markers, line styles and display names.

Search methods, kinds (S and S'), datasets, architecture families, BatchNorm modes and widths each have
one fixed encoding, so the same thing looks the same in every figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib
from matplotlib.typing import LineStyleType

from permlmc.model_names import cifar_resnet, split_model_name

__all__ = [
    "Color",
    "LineStyleType",
    "arch_color",
    "arch_label",
    "axis_label",
    "bn_mode_color",
    "bn_mode_label",
    "dataset_color",
    "dataset_label",
    "dataset_marker",
    "kind_color",
    "kind_label",
    "kind_linestyle",
    "method_label",
    "method_marker",
    "metric_label",
    "network_label",
    "series_colors",
    "width_colors",
]

Color = tuple[float, float, float]


def _rgb(name: str) -> Color:
    r, g, b = matplotlib.colors.to_rgb(name)
    return (r, g, b)


_BASE = [_rgb(c) for c in ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494",
                            "#ece133", "#56b4e9")]
"""Ten colours told apart under the common colour-vision deficiencies (seaborn 0.13's "colorblind" palette)."""
_GREY = _rgb("#555555")
_EXTRA_COLORS: list[Color] = [_BASE[i] for i in (2, 4, 8, 9, 5, 6, 7)]
_EXTRA_MARKERS = ["D", "v", "P", "X", "<", ">", "*"]

# Search methods: "none" is the BEFORE barrier, kept neutral grey so it reads as the reference.
_METHOD_COLORS: dict[str, Color] = {
    "none": _GREY, "weight_matching": _BASE[0], "sa": _BASE[3], "activation_matching": _BASE[2],
    "functional_difference": _BASE[4], "brute_force": _rgb("#000000"), "sa1": _BASE[8], "sa2": _BASE[9],
    "ste": _BASE[6],
}
_METHOD_MARKERS: dict[str, str] = {
    "none": "o", "weight_matching": "s", "sa": "^", "activation_matching": "D", "functional_difference": "v",
    "brute_force": "*", "sa1": "<", "sa2": ">", "ste": "P",
}
_METHOD_NAMES: dict[str, str] = {
    "none": "none (before search)",
    "weight_matching": "weight matching",
    "sa": "simulated annealing",
    "activation_matching": "activation matching",
    "functional_difference": "functional difference",
    "brute_force": "brute force (exact)",
    "sa1": "SA₁ (pairwise barriers)",
    "sa2": "SA₂ (error of the average)",
    "ste": "straight-through estimator",
}

# kind "real" is the paper's S (two seeds); "model" is S' (random permutations of one network).
_KIND_COLORS: dict[str, Color] = {"real": _BASE[0], "model": _BASE[1]}
_KIND_LINESTYLES: dict[str, LineStyleType] = {"real": "-", "model": "--"}
_KIND_NAMES: dict[str, str] = {
    "real": "real world S (two seeds)",
    "model": "our model S\u2032 (permuted copies)",
}

_DATASET_COLORS: dict[str, Color] = {
    "mnist": _BASE[0], "cifar10": _BASE[1], "svhn": _BASE[2], "cifar100": _BASE[3], "fashionmnist": _BASE[4],
}  # fmt: skip
_DATASET_MARKERS: dict[str, str] = {"mnist": "o", "fashionmnist": "v", "svhn": "s", "cifar10": "^", "cifar100": "D"}
_DATASET_NAMES: dict[str, str] = {
    "mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN", "fashionmnist": "Fashion-MNIST",
}  # fmt: skip

_ARCH_COLORS: dict[str, Color] = {"mlp": _BASE[0], "cnn": _BASE[1], "vgg": _BASE[2], "resnet": _BASE[3],
                                   "vit": _BASE[4]}
_ARCH_NAMES: dict[str, str] = {"mlp": "MLP", "cnn": "Shallow CNN", "vgg": "VGG", "resnet": "ResNet", "vit": "ViT"}
# what `width` and `depth` count in each family (VGG/ResNet depth is the n of VGG-n / ResNet-n)
_WIDTH_UNITS: dict[str, str] = {
    "mlp": "hidden units per layer", "cnn": "channels per layer", "vgg": "first-stage channels",
    "resnet": "first-stage channels", "vit": "embedding width",
}  # fmt: skip
_DEPTH_UNITS: dict[str, str] = {
    "mlp": "hidden layers", "cnn": "convolutional layers", "vgg": "VGG-n", "resnet": "ResNet-n",
    "vit": "encoder blocks",
}  # fmt: skip
_NAMED_BY_DEPTH = {"vgg", "resnet"}
_NORM_NAMES: dict[str, str] = {"bn": "BN", "ln": "LN", "none": "no norm"}
CIFAR_RESNET_BASE = 16
"""First-stage channels of the CIFAR ResNet x1 (He et al. §4.2): width = 16 k for the width multiplier k."""

# BatchNorm statistics along the path: the paper's interpolation is the grey reference.
_BN_MODE_COLORS: dict[str, Color] = {"interpolate": _rgb("#8c8c8c"), "reset": _BASE[5], "repair": _BASE[2]}
_BN_MODE_NAMES: dict[str, str] = {
    "interpolate": "interpolate (running statistics interpolated, as the paper)",
    "reset": "reset (statistics recomputed per network)",
    "repair": "repair (REPAIR, Jordan et al. 2022)",
}


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_VARIANT_NAMES: dict[str, str] = {"stream0": "residual stream left in place"}


def method_label(method: str, sa_schedule: str = "") -> str:
    """Legend text for a search method; SA (or any method run with a schedule) names its schedule."""
    algorithm, _, variant = method.partition("-")  # "sa-steps100": SA with one option overridden
    base = _METHOD_NAMES.get(algorithm, algorithm.replace("_", " "))
    if variant:
        base = f"{base} ({_VARIANT_NAMES.get(variant, variant)})"
    return f"{base} [schedule: {sa_schedule}]" if sa_schedule else base


def method_marker(method: str, index: int = 0) -> str:
    """Marker for a method; unknown methods take the ``index``-th spare marker."""
    return _METHOD_MARKERS.get(method.partition("-")[0], _EXTRA_MARKERS[index % len(_EXTRA_MARKERS)])


def series_colors(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Color]:
    """Colours for (method, sa_schedule) series.

    The first series of a known method gets that method's colour; further schedules of the same method
    and unknown methods take spare colours in the order given, so the mapping is deterministic.
    """
    colors: dict[tuple[str, str], Color] = {}
    used_methods: set[str] = set()
    spare = 0
    for key in keys:
        method = key[0]
        if method in _METHOD_COLORS and method not in used_methods:
            colors[key] = _METHOD_COLORS[method]
        else:
            colors[key] = _EXTRA_COLORS[spare % len(_EXTRA_COLORS)]
            spare += 1
        used_methods.add(method)
    return colors


def kind_color(kind: str) -> Color:
    return _KIND_COLORS.get(kind, _rgb("#777777"))


def kind_linestyle(kind: str) -> LineStyleType:
    return _KIND_LINESTYLES.get(kind, ":")


def kind_label(kind: str, *, pairs: bool = True) -> str:
    """``real world S (two seeds)``; without ``pairs`` (a group of n models) ``real world S``."""
    label = _KIND_NAMES.get(kind, kind)
    return label if pairs else label.split(" (")[0]


def dataset_color(dataset: str, index: int = 0) -> Color:
    """Fixed colour for the paper's datasets; others take the ``index``-th spare colour."""
    return _DATASET_COLORS.get(_norm(dataset), _EXTRA_COLORS[index % len(_EXTRA_COLORS)])


def dataset_marker(dataset: str, index: int = 0) -> str:
    """Fixed marker for the paper's datasets; others take the ``index``-th spare marker."""
    return _DATASET_MARKERS.get(_norm(dataset), _EXTRA_MARKERS[index % len(_EXTRA_MARKERS)])


def dataset_label(dataset: str) -> str:
    """Display name; a label-noise variant (``fashion_mnist-noise20``) adds its share of random labels."""
    base, _, noise = dataset.partition("-noise")
    name = _DATASET_NAMES.get(_norm(base), base)
    return f"{name}, {noise}% random labels" if noise else name


def arch_color(arch: str, index: int = 0) -> Color:
    """Fixed colour per architecture family (with its default norm); others, norm variants included, take the
    ``index``-th spare colour."""
    return _ARCH_COLORS.get(arch, _EXTRA_COLORS[index % len(_EXTRA_COLORS)])


def _norm_suffix(norm: str | None) -> str:
    return f" ({_NORM_NAMES.get(norm, norm)})" if norm else ""


def arch_label(arch: str) -> str:
    """``VGG``, ``ResNet (LN)``, ``VGG (no norm)``: the family's display name and a non-default norm."""
    family, norm = split_model_name(arch)
    return _ARCH_NAMES.get(family, family) + _norm_suffix(norm)


def network_label(arch: str, depth: int, width: int) -> str:
    """``MLP d1 w64``, ``Shallow CNN d2 w16``, ``VGG-11 w16``, ``ResNet-18 w16``, ``ResNet-20 (LN) x4``: CIFAR
    ResNets (three stages) by their width multiplier k = width / 16."""
    family, norm = split_model_name(arch)
    if family not in _NAMED_BY_DEPTH:
        return f"{arch_label(arch)} d{depth} w{width}"
    size = f"\u00d7{width / CIFAR_RESNET_BASE:g}" if cifar_resnet(arch, depth) else f"w{width}"
    return f"{_ARCH_NAMES.get(family, family)}-{depth}{_norm_suffix(norm)} {size}"


def network_title(dataset: str, arch: str, depth: float, width: float) -> str:
    """``Fashion-MNIST · MLP d1 w64``: one network of one dataset, as a panel title (depth and width as read
    from a table)."""
    return f"{dataset_label(str(dataset))} · {network_label(str(arch), int(depth), int(width))}"


def axis_label(axis: str, arch: str) -> str:
    """What ``width`` (log2 axis) or ``depth`` counts for ``arch``, e.g. ``width (first-stage channels, log2)``."""
    if axis == "width":
        return f"width ({_WIDTH_UNITS.get(split_model_name(arch)[0], 'units per layer')}, log\u2082)"
    if axis == "depth":
        return f"depth ({_DEPTH_UNITS.get(split_model_name(arch)[0], 'layers')})"
    return axis


def bn_mode_color(bn_mode: str, index: int = 0) -> Color:
    return _BN_MODE_COLORS.get(bn_mode, _EXTRA_COLORS[index % len(_EXTRA_COLORS)])


def bn_mode_label(bn_mode: str) -> str:
    return _BN_MODE_NAMES.get(bn_mode, bn_mode)


def width_colors(widths: Iterable[int]) -> dict[int, Color]:
    """Sequential colours for network widths (narrow = light, wide = dark)."""
    ordered = sorted(set(widths))
    cmap, steps = matplotlib.colormaps["viridis_r"], len(ordered) + 1  # evenly inside the map, without its ends
    return {w: _rgb(matplotlib.colors.to_hex(cmap((i + 1) / steps))) for i, w in enumerate(ordered)}


def metric_label(split: str, metric: str, value: str = "barrier") -> str:
    """The quantity a barrier axis shows, e.g. ``train error barrier at α = ½`` (the paper's) or ``test loss barrier,
    max over α`` (Eq. 1's supremum)."""
    if value == "barrier_mid":
        return f"{split} {metric} barrier at \u03b1 = \u00bd"
    return f"{split} {metric} barrier, max over \u03b1"
