"""The temperature-scaled barrier (Ito et al. 2025) beside the raw cross-entropy barrier, against width.

One panel per arch's width study and kind (real world S, our model S'); one colour per method (before search:
``none``), solid for the raw loss barrier and dashed for ``loss_temperature_scaled``, the barrier of the
cross-entropy at one softmax temperature fitted per interpolated network on the training subset. Where the dashed
line lies far below the solid one, the barrier is mostly miscalibration of the interpolated networks rather than lost
accuracy.
Options (see :mod:`permlmc.plotting.selection`): ``split``, ``value``, ``bn_mode``, ``depth``, ``methods`` and the
``dataset``/``arch``/``residual`` filters; ``metric`` is ignored (both losses are drawn).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["temperature_scaled_barriers"]

LINES: dict[str, palette.LineStyleType] = {"loss": "-", "loss_temperature_scaled": "--"}
"""Line style of each of the two losses."""


def temperature_scaled_barriers(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Raw and temperature-scaled loss barriers vs width, before and after each search, S and S'."""
    frames = {metric: selection.barrier_rows(tables, {**options, "metric": metric}) for metric in LINES}
    rows = pd.concat([frame.assign(quantity=metric) for metric, (frame, _) in frames.items()])
    methods = selection.method_option(options)
    if methods is not None:
        rows = rows[rows["method"].isin(["none", *methods])]
    scaled = rows[rows["quantity"] == "loss_temperature_scaled"]
    split = selection.choice(options, "split", "train", selection.SPLITS)
    title = f"{split} loss barrier, raw (solid) and temperature-scaled (dashed), vs width"
    studies = selection.studies(scaled, options, "width")
    panels_found = [(study, kind, study.rows(rows[rows["kind"] == kind]))
                    for study in studies for kind in selection.KINDS]
    panels_found = [p for p in panels_found if not p[2].empty]
    if scaled.empty or not panels_found:
        style.no_data_figure(out, "barriers of metric loss_temperature_scaled (config barrier.temperature_scaled)",
                             title)
        return
    keys = selection.series_keys(rows, methods)
    colors = palette.series_colors(keys)
    with style.figure_context():
        fig, grid = style.make_grid(*style.grid_shape(len(panels_found), max_cols=len(selection.KINDS)))
        for ax, (study, kind, sub) in zip(panels.flat(grid), panels_found, strict=False):
            for key in keys:
                for metric, line in LINES.items():
                    part = sub[(sub["method"] == key[0]) & (sub["sa_schedule"] == key[1]) & (sub["quantity"] == metric)]
                    if not part.empty:
                        suffix = " (temperature-scaled)" if metric == "loss_temperature_scaled" else ""
                        label = palette.method_label(*key) + suffix
                        panels.mean_line(ax, selection.mean_sd(part, "width"), "width", color=colors[key],
                                         label=label, linestyle=line, band=metric == "loss")
            panels.format_study_axis(ax, "width", study.arch, sub["width"])
            ax.set_title(f"{palette.arch_label(study.arch)} \u00b7 {study.caption} \u00b7 {palette.kind_label(kind)}")
            ax.set_ylabel(frames["loss"][1])
        panels.hide_unused(grid, len(panels_found))
        notes = ["mean over pairs", "band: \u00b11 s.d. of the raw barrier", selection.bn_mode_note(tables, options)]
        fig.suptitle(f"{title}\n({'; '.join(n for n in notes if n)})")
        panels.axes_legend(fig, panels.flat(grid), "method")
        style.save_figure(fig, out)
