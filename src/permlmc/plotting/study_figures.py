"""Figures of the studies that span many models per job, each from its own table: all pairs of small
networks (App. E.3, Fig. 18), Theorem 3.1 at initialisation and ensembles (App. C, Table 3). Options ``metric`` and
``value`` pick the all-pairs barrier shown (:func:`permlmc.plotting.study_tables.many_model_barrier`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from permlmc.plotting import palette, panels, selection, study_tables, style

__all__ = ["all_pairs", "ensembles", "theorem_rate"]

_STAGES = {"before": (palette.method_label("none"), "#999999"), "after": ("after search", "#0173b2")}


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    frame = tables.get(name)
    return pd.DataFrame() if frame is None else frame


def all_pairs(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Fig. 18: histograms of the barrier of every pair and of the indirect barrier min_B max(B(A,B), B(B,C)),
    before and after the search, one column per network; below each, the same over the independent pairs alone
    (two random halves of the networks, matched one to one: the paper's i.i.d. variant)."""
    column, label = study_tables.many_model_barrier(options)
    columns = [column, *([f"indirect_{column}"] if f"indirect_{column}" in _table(tables, "all_pairs") else [])]
    frame = selection.read_table(tables, "all_pairs", [*selection.CONFIG, "a", "stage", "independent", *columns],
                                 rerun="compare_all_pairs")  # indirect barriers: three networks or more
    title = f"Barriers between pairs of small networks ({label})"
    if frame.empty:
        style.no_data_figure(Path(out), "all-pairs barriers", title)
        return
    networks = list(frame.groupby(selection.CONFIG))
    rows = [(c, sample) for c in columns for sample in ("all", "independent")]
    with style.figure_context():
        fig, grid = style.make_grid(len(rows), len(networks))
        for col, (network, part) in enumerate(networks):
            for r, (shown, sample) in enumerate(rows):
                ax = grid[r][col]
                chosen = part if sample == "all" else part[part["independent"] == "True"]  # read as text
                _histogram(ax, chosen, shown, part[shown].dropna())
                pairs = int((chosen["stage"] == "before").sum())
                what = (f"all {pairs} pairs (shared networks)" if sample == "all"
                        else f"{pairs} independent pairs (two random halves)")
                ax.set_xlabel(f"{'indirect ' if shown.startswith('indirect') else ''}{label}", fontsize=7)
                ax.set_title(f"{palette.network_title(*network)}, {part['a'].nunique() + 1} networks\n{what}",
                             fontsize=8)
        method = palette.method_label(str(frame["method"].iloc[0]))
        fig.suptitle(f"{title}\n(search: {method}; all pairs share networks, so their counts are not independent)")
        panels.axes_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))


def _histogram(ax: Axes, rows: pd.DataFrame, column: str, every: pd.Series) -> None:
    """Before/after histograms of ``column`` of ``rows`` on bins spanning ``every`` value of the network."""
    bins = np.linspace(min(0.0, every.min()), max(every.max(), 1e-6), 21).tolist()
    for stage, (label, color) in _STAGES.items():
        ax.hist(rows.loc[rows["stage"] == stage, column], bins=bins, color=color, alpha=0.6, label=label)
    ax.set_ylabel("pairs")


def theorem_rate(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Theorem 3.1: mean interpolation gap of two random one-hidden-layer networks vs width h (log-log), before
    and after alignment, next to the h^(-1/(2d+4)) rate (dotted, scaled to the first point after alignment)."""
    frame = _table(tables, "theorem")
    title = "Theorem 3.1 at random initialisation: |f(interpolation) - interpolation of f| vs width"
    if frame.empty:
        style.no_data_figure(Path(out), "the theorem check", title)
        return
    dims = sorted(frame["input_dim"].unique())
    with style.figure_context():
        fig, grid = style.make_grid(1, len(dims))
        for ax, d in zip(grid[0], dims, strict=True):
            part = frame[frame["input_dim"] == d]
            for column, label in (("gap_before", "before permutation"), ("gap_after", "after permutation")):
                stats = selection.mean_sd(part, "width", column)
                panels.mean_line(ax, stats, "width", color=palette.kind_color("real"), label=label,
                                 linestyle="--" if column == "gap_before" else "-")
            after = selection.mean_sd(part, "width", "gap_after")
            widths = after["width"].to_numpy(dtype=float)
            rate = widths ** (-1.0 / (2 * d + 4))
            ax.plot(widths, rate / rate[0] * after["mean"].iloc[0], ":", color="black",
                    label="theorem's rate h^(-1/(2d+4))")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("hidden units h")
            ax.set_ylabel("mean over inputs of sup over alpha")
            ax.set_title(f"input dimension d = {d}", fontsize=8)
        fig.suptitle(f"{title}\n(mean over draws; {panels.BAND.replace('pairs', 'draws')})")
        panels.axes_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))


def ensembles(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Table 3: test accuracy of each endpoint, the output ensemble, the weight average after each search,
    and subspace-learning lines (SL: ends' output ensemble and midpoint), one panel per network."""
    frame = _table(tables, "ensembles")
    title = "Ensembles (paper App. C, Table 3): test accuracy"
    if frame.empty:
        style.no_data_figure(Path(out), "ensembles", title)
        return
    networks = list(frame.groupby(selection.CONFIG))
    with style.figure_context():
        fig, grid = style.make_grid(1, len(networks), panel=(5.0, 3.6))
        for ax, (network, part) in zip(grid[0], networks, strict=True):
            labels = [f"{e}: {m}" for e, m in zip(part["ensemble"], part["member"], strict=True)]
            accuracy = part["test_accuracy"].to_numpy(dtype=float)
            ax.barh(range(len(labels)), accuracy, color=palette.kind_color("real"))
            for y, value in enumerate(accuracy):
                ax.text(value, y, f" {100 * value:.2f}", va="center", fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
            ax.invert_yaxis()
            low = max(0.0, float(accuracy.min()) - 0.05)
            ax.set_xlim(low, min(1.0, float(accuracy.max()) + 0.05))
            ax.set_xlabel("test accuracy")
            ax.set_title(palette.network_title(*network), fontsize=8)
        fig.suptitle(title)
        style.save_figure(fig, Path(out))
