"""Layer-wise barriers (Adilova et al. 2024, beyond the paper): the barrier of the curve on which one group of
parameters moves from A to the permuted B and the rest stays at A, for each group in network order.

One panel per network and kind (real world S, our model S'); one colour per method (``none``: before search).
Solid: the layer moved alone; dashed: the layers up to it moved together (the last point is the whole network's
barrier), which locates where a barrier builds up. Options: ``split``,
``metric`` (``loss``/``error``), ``value`` (``barrier``/``barrier_mid``) and the ``dataset``/``arch`` filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["layerwise_barriers"]

MOVED: dict[str, tuple[palette.LineStyleType, str]] = {"alone": ("-", ""), "up_to": ("--", " (layers up to it)")}
"""Line style and legend suffix of each curve kind (``moved`` column of ``layerwise.csv``)."""


def layerwise_barriers(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Barrier of each layer interpolated alone, in network order, before and after each search."""
    split = selection.choice(options, "split", "train", selection.SPLITS)
    metric = selection.choice(options, "metric", selection.DEFAULT_METRIC, ("loss", "error"))
    value = selection.choice(options, "value", selection.DEFAULT_VALUE, selection.VALUES)
    ylabel = palette.metric_label(split, metric, value)
    title = f"Layer-wise {ylabel}: one layer (solid) or the layers up to it (dashed) interpolated, the rest at A"
    frame = tables.get("layerwise")
    if frame is not None and not frame.empty:
        frame = selection.filter_labels(frame, options, ["dataset", "arch"])
        frame = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    if frame is None or frame.empty:
        style.no_data_figure(Path(out), f"layer-wise {split} {metric} barriers", title)
        return
    panels_found = [(key, kind, part[part["kind"] == kind]) for key, part in frame.groupby(["dataset", "arch", "depth",
                    "width"]) for kind in selection.KINDS if kind in set(part["kind"])]  # S, then S'

    methods = [m for m in selection.METHOD_ORDER if m in set(frame["method"])]
    methods += sorted(set(frame["method"]) - set(methods))
    colors = palette.series_colors([(m, "") for m in methods])
    with style.figure_context():
        fig, grid = style.make_grid(*style.grid_shape(len(panels_found), max_cols=2))
        for ax, ((dataset, arch, depth, width), kind, sub) in zip(panels.flat(grid), panels_found, strict=False):
            layers = sub.drop_duplicates("position").sort_values("position")
            for method in methods:
                for moved, (line, note) in MOVED.items():
                    part = sub[(sub["method"] == method) & (sub["moved"] == moved)]
                    if part.empty:
                        continue
                    stats = selection.mean_sd(part.assign(y=part[value]), "position")
                    panels.mean_line(ax, stats, "position", color=colors[(method, "")], linestyle=line,
                                     label=palette.method_label(method) + note, marker=palette.method_marker(method),
                                     band=False)
            ax.set_xticks(layers["position"].tolist())
            ax.set_xticklabels(layers["layer"].tolist(), rotation=60, ha="right", fontsize=7)
            ax.set_xlabel("layer (parameter group), input to output")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{palette.network_title(dataset, arch, depth, width)}\n{palette.kind_label(str(kind))}")
        panels.hide_unused(grid, len(panels_found))
        fig.suptitle(f"{title}\n(mean over the pairs present; BatchNorm statistics move with their layer)")
        panels.axes_legend(fig, panels.flat(grid), "method")
        style.save_figure(fig, Path(out))
