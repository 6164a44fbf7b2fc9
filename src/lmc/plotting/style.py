"""One shared look for every figure: theme, palettes, labels, panel size, dpi, atomic saving.

The theme is applied through :func:`figure_context` (an ``rc_context``), so importing this module or
drawing a figure never changes matplotlib's global settings for the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.typing import LineStyleType  # noqa: E402

from lmc.io import atomic_path  # noqa: E402

__all__ = [
    "DPI",
    "PANEL_SIZE",
    "Color",
    "dataset_color",
    "dataset_label",
    "figure_context",
    "figure_legend",
    "grid_shape",
    "kind_color",
    "kind_label",
    "LineStyleType",
    "kind_linestyle",
    "make_grid",
    "method_label",
    "method_marker",
    "metric_label",
    "no_data_figure",
    "save_figure",
    "series_colors",
    "width_colors",
]

Color = tuple[float, float, float]

DPI = 150
"""Raster resolution; vector formats ignore it."""

PANEL_SIZE = (3.4, 2.6)
"""Width and height (inches) of one panel; a figure is a grid of these."""

_RC_EXTRA: dict[str, Any] = {
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 11,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.5,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
}


def _theme_rc() -> dict[Any, Any]:
    rc: dict[Any, Any] = {}
    rc.update(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("paper"))
    rc.update(_RC_EXTRA)
    return rc


@contextmanager
def figure_context() -> Iterator[None]:
    """Apply the project theme for the duration of the block only."""
    with matplotlib.rc_context(_theme_rc()):
        yield


def _rgb(name: str) -> Color:
    r, g, b = matplotlib.colors.to_rgb(name)
    return (r, g, b)


_BASE = [_rgb(c) for c in sns.color_palette("colorblind", 10)]

# Search methods: "none" is the BEFORE barrier, kept neutral grey so it reads as the reference.
_METHOD_COLORS: dict[str, Color] = {
    "none": _rgb("#555555"),
    "weight_matching": _BASE[0],
    "sa": _BASE[3],
}
_EXTRA_COLORS: list[Color] = [_BASE[i] for i in (2, 4, 8, 9, 5, 6, 7)]
_METHOD_MARKERS: dict[str, str] = {"none": "o", "weight_matching": "s", "sa": "^"}
_EXTRA_MARKERS = ["D", "v", "P", "X", "<", ">", "*"]
_METHOD_NAMES: dict[str, str] = {
    "none": "none (before search)",
    "weight_matching": "weight matching",
    "sa": "simulated annealing",
}

# kind "real" is the paper's S (two seeds); "model" is S' (random permutations of one network).
_KIND_COLORS: dict[str, Color] = {"real": _BASE[0], "model": _BASE[1]}
_KIND_LINESTYLES: dict[str, LineStyleType] = {"real": "-", "model": "--"}
_KIND_NAMES: dict[str, str] = {
    "real": "real world S (two seeds)",
    "model": "our model S\u2032 (permuted copies)",
}

_DATASET_COLORS: dict[str, Color] = {
    "mnist": _BASE[0],
    "cifar10": _BASE[1],
    "svhn": _BASE[2],
    "cifar100": _BASE[3],
    "fashionmnist": _BASE[4],
}
_DATASET_NAMES: dict[str, str] = {
    "mnist": "MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
    "fashionmnist": "Fashion-MNIST",
}


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def method_label(method: str, sa_schedule: str = "") -> str:
    """Legend text for a search method; SA (or any method run with a schedule) names its schedule."""
    base = _METHOD_NAMES.get(method, method.replace("_", " "))
    return f"{base} [schedule: {sa_schedule}]" if sa_schedule else base


def method_marker(method: str, index: int = 0) -> str:
    """Marker for a method; unknown methods take the ``index``-th spare marker."""
    return _METHOD_MARKERS.get(method, _EXTRA_MARKERS[index % len(_EXTRA_MARKERS)])


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


def kind_label(kind: str) -> str:
    return _KIND_NAMES.get(kind, kind)


def dataset_color(dataset: str, index: int = 0) -> Color:
    """Fixed colour for the paper's datasets; others take the ``index``-th spare colour."""
    return _DATASET_COLORS.get(_norm(dataset), _EXTRA_COLORS[index % len(_EXTRA_COLORS)])


def dataset_label(dataset: str) -> str:
    return _DATASET_NAMES.get(_norm(dataset), dataset)


def width_colors(widths: Iterable[int]) -> dict[int, Color]:
    """Sequential colours for network widths (narrow = light, wide = dark)."""
    ordered = sorted(set(widths))
    palette = sns.color_palette("viridis_r", max(len(ordered), 1))
    return {w: _rgb(matplotlib.colors.to_hex(palette[i])) for i, w in enumerate(ordered)}


def metric_label(split: str, metric: str, value: str = "barrier") -> str:
    """Axis label such as ``train loss barrier`` or ``test error barrier (α = 1/2)``."""
    suffix = " (\u03b1 = 1/2)" if value == "barrier_mid" else ""
    return f"{split} {metric} barrier{suffix}"


def make_grid(
    nrows: int,
    ncols: int,
    *,
    panel: tuple[float, float] = PANEL_SIZE,
    sharex: bool = False,
    sharey: bool = False,
) -> tuple[Figure, list[list[Axes]]]:
    """A constrained-layout figure of ``nrows`` x ``ncols`` panels (``figure_legend`` adds room below)."""
    nrows, ncols = max(nrows, 1), max(ncols, 1)
    width = panel[0] * ncols + 0.4
    height = panel[1] * nrows + 0.8
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=False, sharex=sharex, sharey=sharey,
        layout="constrained",
    )  # fmt: skip
    grid: list[list[Axes]] = [[axes[r][c] for c in range(ncols)] for r in range(nrows)]
    return fig, grid


def figure_legend(
    fig: Figure, handles: Sequence[Artist], labels: Sequence[str], title: str | None = None
) -> None:
    """One legend for the whole figure, centred below the panels; the figure grows to make room.

    Below rather than beside, so that it never collides with the suptitle; as many columns as fit.
    """
    if not handles:
        return
    entry_width = 0.7 + 0.07 * max(len(label) for label in labels)  # inches, at the 8 pt legend font
    ncol = max(1, min(len(handles), int(fig.get_figwidth() // entry_width)))
    rows = math.ceil(len(handles) / ncol) + (1 if title else 0)
    fig.set_figheight(fig.get_figheight() + 0.2 * rows + 0.2)
    fig.legend(handles, labels, loc="outside lower center", ncols=ncol, title=title, frameon=False)


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    """Rows and columns for ``n`` panels wrapped at ``max_cols`` columns."""
    ncols = max(1, min(n, max_cols))
    return max(1, math.ceil(n / ncols)), ncols


def _format_of(path: Path) -> str:
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(f"{path}: figure path needs a suffix naming its format (.png, .pdf, .svg)")
    return fmt


def save_figure(fig: Figure, out: str | Path) -> None:
    """Write ``fig`` atomically to ``out`` (format from the suffix) and close it."""
    target = Path(out)
    try:
        fmt = _format_of(target)
        metadata: dict[str, Any] | None = None
        if fmt == "pdf":
            metadata = {"CreationDate": None}
        elif fmt == "svg":
            metadata = {"Date": None}
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight", metadata=metadata)
    finally:
        plt.close(fig)


def no_data_figure(out: str | Path, what: str, title: str | None = None) -> None:
    """A one-panel placeholder saying ``no data for <what>``; the workflow always asks for every figure."""
    with figure_context():
        fig, grid = make_grid(1, 1)
        ax = grid[0][0]
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no data for {what}", ha="center", va="center", wrap=True, transform=ax.transAxes)
        if title:
            fig.suptitle(title)
        save_figure(fig, out)
