"""Merging n models (Git Re-Basin Alg. 3, beyond the paper): the loss or error of the weight average of seeds
1..n against n, without alignment (``none``), after aligning every model to the first (``align_to_first``) and
after MergeMany; one panel per network, solid for the test split and dashed for train; each panel's title gives the
cycle-consistency error of pairwise weight matching among its first three models. Option ``metric``
(``loss``/``error``, default ``error``) and the ``dataset``/``arch`` filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["merge_many"]

METHODS = {"none": "plain average (no alignment)", "align_to_first": "all aligned to the first (weight matching)",
           "merge_many": "MergeMany (Git Re-Basin Alg. 3)"}
SPLITS: dict[str, palette.LineStyleType] = {"test": "-", "train": "--"}


def merge_many(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Merged network's loss/error against the number of models merged, per alignment method."""
    metric = selection.choice(options, "metric", selection.DEFAULT_METRIC, ("loss", "error"))
    title = f"Merging n models: {metric} of the weight average of seeds 1..n"
    frame = tables.get("merge_many")
    if frame is not None and not frame.empty:
        frame = selection.filter_labels(frame, options, ["dataset", "arch"])
    if frame is None or frame.empty or metric not in frame:
        style.no_data_figure(Path(out), "merged networks (config merge_many)", title)
        return
    networks = list(frame.groupby(["dataset", "arch", "depth", "width"]))
    colors = palette.series_colors([(m, "") for m in METHODS])
    with style.figure_context():
        fig, grid = style.make_grid(*style.grid_shape(len(networks), max_cols=3))
        for ax, ((dataset, arch, depth, width), part) in zip(panels.flat(grid), networks, strict=False):
            for method, label in METHODS.items():
                for split, line in SPLITS.items():
                    rows = part[(part["method"] == method) & (part["split"] == split)].dropna(subset=[metric])
                    if not rows.empty:
                        panels.mean_line(ax, selection.mean_sd(rows.assign(y=rows[metric]), "n"), "n",
                                         color=colors[(method, "")], label=f"{label}, {split}", linestyle=line,
                                         band=False)
            ns = sorted(part["n"].dropna().unique())
            ax.set_xticks(ns)
            ax.set_xlabel("models merged (n)")
            ax.set_ylabel(f"{metric} of the merged network")
            cycle = part.loc[part["method"] == "cycle", "cycle_error"] if "cycle_error" in part else pd.Series()
            note = f"\ncycle error of pairwise WM: {cycle.mean():.3f}" if not cycle.dropna().empty else ""
            ax.set_title(f"{palette.network_title(dataset, arch, depth, width)}{note}")
        panels.hide_unused(grid, len(networks))
        fig.suptitle(f"{title}\n(solid: test, dashed: train; BatchNorm statistics re-estimated for the average)")
        panels.axes_legend(fig, panels.flat(grid), "alignment")
        style.save_figure(fig, Path(out))
