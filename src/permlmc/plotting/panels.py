"""Drawing helpers shared by the figures: mean lines with bands, study axes, empty panels, one legend."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from permlmc.plotting import palette, style

__all__ = ["BAND", "empty_panel", "axes_legend", "flat", "format_study_axis", "hide_unused", "mean_line"]

BAND = "band: \u00b11 s.d. over pairs"


def mean_line(
    ax: Axes,
    stats: pd.DataFrame,
    x: str,
    *,
    color: palette.Color,
    label: str,
    linestyle: palette.LineStyleType = "-",
    marker: str | None = "o",
    alpha: float = 1.0,
    band: bool = True,
    linewidth: float | None = None,
) -> None:
    """Plot ``stats["mean"]`` against ``stats[x]`` (a :func:`~permlmc.plotting.selection.mean_sd` frame),
    with a +/-1 s.d. band unless ``band`` is false."""
    xs = stats[x].to_numpy(dtype=float)
    mean = stats["mean"].to_numpy(dtype=float)
    ax.plot(
        xs, mean, color=color, linestyle=linestyle, marker=marker, alpha=alpha, label=label,
        linewidth=linewidth,
    )  # fmt: skip
    if band and len(xs) > 0:
        sd = stats["std"].to_numpy(dtype=float)
        ax.fill_between(xs, mean - sd, mean + sd, color=color, alpha=0.18 * alpha, linewidth=0)


def format_study_axis(ax: Axes, axis: str, arch: str, values: Iterable[float]) -> None:
    """x axis of a width study (log2, ticks at the widths present) or a depth study (ticks at the depths
    present, e.g. 11/13/16/19 for VGG), labelled with what the axis counts for ``arch``."""
    present = sorted({float(v) for v in values})
    ax.set_xlabel(palette.axis_label(axis, arch))
    if axis == "width":
        ax.set_xscale("log", base=2)
        if present:
            ax.set_xticks(present)
            ax.set_xticklabels([_pow2_label(v) for v in present])
            ax.minorticks_off()
    elif axis == "depth" and present:
        ax.set_xticks(present)
        ax.set_xticklabels([f"{v:g}" for v in present])
        ax.minorticks_off()
        if len(present) == 1:
            ax.set_xlim(present[0] - 1, present[0] + 1)


def _pow2_label(value: float) -> str:
    exponent = np.log2(value) if value > 0 else np.nan
    if np.isfinite(exponent) and float(exponent).is_integer():
        return f"$2^{{{int(exponent)}}}$"
    return f"{value:g}"


def empty_panel(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no data for {what}", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def axes_legend(fig: Figure, axes: Iterable[Axes], title: str | None = None) -> None:
    """One legend for the whole figure from the panels' labelled artists, duplicates removed."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels and not label.startswith("_"):
                handles.append(handle)
                labels.append(label)
    style.legend_below(fig, handles, labels, title)


def flat(grid: list[list[Axes]]) -> list[Axes]:
    return [ax for row in grid for ax in row]


def hide_unused(grid: list[list[Axes]], used: int) -> None:
    for ax in flat(grid)[used:]:
        ax.set_visible(False)
