"""Figures of the studies that span many models per job, each from its own table: all pairs of small
networks (App. E.3, Fig. 18), Theorem 3.1 at initialisation, SA1/SA2 group searches (§4.2) and ensembles
(App. C, Table 3). Option ``metric`` (``loss``/``error``) picks the barrier shown where there is a choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["all_pairs", "ensembles", "group_searches", "theorem_rate"]

_STAGES = {"before": (palette.method_label("none"), "#999999"), "after": ("after search", "#0173b2")}


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    frame = tables.get(name)
    return pd.DataFrame() if frame is None else frame


def _network(row: Mapping[str, Any]) -> str:
    return (f"{palette.dataset_label(str(row['dataset']))} \u00b7 "
            f"{palette.network_label(str(row['arch']), int(row['depth']), int(row['width']))}")


def all_pairs(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Fig. 18: histograms of the barrier of every pair (top) and of the indirect barrier min_B max(B(A,B),
    B(B,C)) (bottom), before and after the search, one column per width."""
    metric = selection.choice(options, "metric", selection.DEFAULT_METRIC, selection.METRICS)
    frame = _table(tables, "all_pairs")
    title = f"Barriers between all pairs of small networks (train {metric})"
    if frame.empty:
        style.no_data_figure(Path(out), "all-pairs barriers", title)
        return
    networks = list(frame.groupby(["dataset", "arch", "depth", "width"]))
    has_indirect = f"indirect_{metric}" in frame
    with style.figure_context():
        fig, grid = style.make_grid(2 if has_indirect else 1, len(networks))
        for col, (_, part) in enumerate(networks):
            for r, column in enumerate([metric, f"indirect_{metric}"][: len(grid)]):
                ax = grid[r][col]
                values = part[column].dropna()
                bins = np.linspace(min(0.0, values.min()), max(values.max(), 1e-6), 21).tolist()
                for stage, (label, color) in _STAGES.items():
                    ax.hist(part.loc[part["stage"] == stage, column], bins=bins, color=color, alpha=0.6,
                            label=label)
                ax.set_xlabel(f"{'indirect ' if r else ''}{metric} barrier")
                ax.set_ylabel("pairs")
                ax.set_title(f"{_network(part.iloc[0])}, {part['a'].nunique() + 1} seeds", fontsize=8)
        method = palette.method_label(str(frame["method"].iloc[0]))
        fig.suptitle(f"{title}\n(search: {method}; pairs share networks, so counts are not independent)")
        panels.figure_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))


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
        panels.figure_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))


def group_searches(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """§4.2: average pairwise barrier of n models before and after SA1, SA2 and pairwise methods (aligning
    every model to the first), for real seeds and permuted copies."""
    metric = selection.choice(options, "metric", selection.DEFAULT_METRIC, selection.METRICS)
    frame = _table(tables, "groups")
    title = f"Group searches: average pairwise train {metric} barrier of n models"
    if frame.empty:
        style.no_data_figure(Path(out), "group searches", title)
        return
    networks = list(frame.groupby(["dataset", "arch", "depth", "width"]))
    kinds = [k for k in selection.KINDS if k in set(frame["kind"])]
    with style.figure_context():
        fig, grid = style.make_grid(len(networks), len(kinds))
        for row, (_, part) in zip(grid, networks, strict=True):
            for ax, kind in zip(row, kinds, strict=True):
                sub = part[part["kind"] == kind]
                methods = list(dict.fromkeys(sub["method"]))
                before = sub[sub["stage"] == "before"][f"{metric}_barrier"].mean()
                after = [sub[(sub["method"] == m) & (sub["stage"] == "after")][f"{metric}_barrier"].mean()
                         for m in methods]
                colors = palette.series_colors([(m, "") for m in methods])
                ax.bar(range(len(methods)), after, color=[colors[(m, "")] for m in methods])
                ax.axhline(before, color="#555555", linestyle="--", label="before search")
                ax.set_xticks(range(len(methods)), [palette.method_label(m) for m in methods], rotation=30,
                              ha="right", fontsize=7)
                ax.set_ylabel(f"{metric} barrier")
                models = int(sub["models"].iloc[0]) if "models" in sub else 0
                ax.set_title(f"{_network(sub.iloc[0])} \u00b7 {palette.kind_label(kind)}, n = {models}", fontsize=8)
        fig.suptitle(title)
        panels.figure_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))


def ensembles(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Table 3: test accuracy of each endpoint, the output ensemble, the weight average after each search,
    and subspace-learning lines (SL: ends' output ensemble and midpoint), one panel per network."""
    frame = _table(tables, "ensembles")
    title = "Ensembles (paper App. C, Table 3): test accuracy"
    if frame.empty:
        style.no_data_figure(Path(out), "ensembles", title)
        return
    networks = list(frame.groupby(["dataset", "arch", "depth", "width"]))
    with style.figure_context():
        fig, grid = style.make_grid(1, len(networks), panel=(5.0, 3.6))
        for ax, (_, part) in zip(grid[0], networks, strict=True):
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
            ax.set_title(_network(part.iloc[0]), fontsize=8)
        fig.suptitle(title)
        style.save_figure(fig, Path(out))
