"""Connectivity along training (Frankle et al., ICML 2020; beyond the paper): the barrier between two children
spawned from one parent against the spawn point (``barrier_vs_spawn``), and between two independently trained seeds
against the training epoch (``barrier_vs_epoch``); one panel per network, before search and after weight matching.
Options: ``split``, ``metric`` (``loss``/``error``), ``value`` (``barrier``/``barrier_mid``), ``dataset``/``arch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["barrier_vs_epoch", "barrier_vs_spawn"]


def _draw(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any], table: str, x: str,
          xlabel: str, title: str) -> None:
    split = selection.choice(options, "split", "train", selection.SPLITS)
    metric = selection.choice(options, "metric", selection.DEFAULT_METRIC, ("loss", "error"))
    value = selection.choice(options, "value", selection.DEFAULT_VALUE, selection.VALUES)
    ylabel = palette.metric_label(split, metric, value)
    frame = tables.get(table)
    if frame is not None and not frame.empty:
        frame = selection.filter_labels(frame, options, ["dataset", "arch"])
        frame = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    heading = f"{ylabel} {title}"
    if frame is None or frame.empty:
        style.no_data_figure(Path(out), f"{table} rows of {split} {metric}", heading)
        return
    networks = list(frame.groupby(["dataset", "arch", "depth", "width"]))
    methods = [m for m in ("none", "weight_matching") if m in set(frame["method"])]
    colors = palette.series_colors([(m, "") for m in methods])
    with style.figure_context():
        fig, grid = style.make_grid(*style.grid_shape(len(networks), max_cols=3))
        for ax, ((dataset, arch, depth, width), part) in zip(panels.flat(grid), networks, strict=False):
            for method in methods:
                rows = part[part["method"] == method]
                panels.mean_line(ax, selection.mean_sd(rows.assign(y=rows[value]), x), x, color=colors[(method, "")],
                                 label=palette.method_label(method), marker=palette.method_marker(method))
            ax.set_xscale("symlog", linthresh=1)
            ticks = sorted(part[x].unique())
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(palette.network_title(dataset, arch, depth, width))
        panels.hide_unused(grid, len(networks))
        fig.suptitle(f"{heading}\n(one pair per point; band: \u00b11 s.d. where several)")
        panels.axes_legend(fig, panels.flat(grid), "method")
        style.save_figure(fig, Path(out))


def barrier_vs_spawn(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Barrier between two children of one parent against the epoch they were spawned at (Frankle et al. 2020)."""
    _draw(tables, out, options, "spawning", "spawn_epoch", "spawn point k (epochs the parent trained)",
          "between two children spawned at epoch k, vs k")


def barrier_vs_epoch(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Barrier between two independently trained seeds against the training epoch."""
    _draw(tables, out, options, "along_training", "epoch", "training epoch",
          "between two independently trained seeds, vs epoch")
