"""Residual streams permuted or left in place: the barrier after each search against width, with the streams
searched (solid) and with them kept at the identity (``<method>-stream0``, dashed), for S and S'.

A transformer's (or ResNet's) residual stream is one permutation shared by every block; leaving it in place is
what merging work on transformers often does. On S' the copies' streams were permuted at random, so a search
that leaves them in place cannot undo that part: there the dashed lines measure what the stream alone costs.

Options (see :mod:`permlmc.plotting.selection`): ``split``, ``metric``, ``value``, ``bn_mode``, ``depth`` (each
arch's width study), ``dataset``/``arch`` filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["stream_comparison", "STREAM_VARIANT"]

STREAM_VARIANT = "-stream0"
"""The method suffix of a search that leaves the residual streams in place (permlmc.search.pair.STREAM)."""
COLUMNS = [*selection.BARRIER_READ, "algorithm"]
STYLES: dict[str, palette.LineStyleType] = {"searched": "-", "left": "--"}


def _paired(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of the methods run both ways: each base method with its ``-stream0`` variant."""
    left = {m.removesuffix(STREAM_VARIANT) for m in rows["method"].unique() if m.endswith(STREAM_VARIANT)}
    keep = rows["method"].isin(left) | rows["method"].isin({f"{m}{STREAM_VARIANT}" for m in left})
    return rows[keep].assign(base=rows["method"].str.removesuffix(STREAM_VARIANT),
                             streams=rows["method"].str.endswith(STREAM_VARIANT).map({True: "left", False: "searched"}))


def stream_comparison(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """One row of panels (S, S') per arch's width study; a colour per search method, solid with the residual
    streams searched, dashed with them left in place."""
    out, title = Path(out), "Residual streams searched or left in place: barrier after search"
    rows, ylabel = selection.barrier_rows(tables, options, columns=COLUMNS, variants=True)
    rows = _paired(rows)
    found = selection.studies_with_rows(rows, options, "width")
    if not found:
        style.no_data_figure(out, title, "methods run with and without -stream0")
        return
    bases = sorted(rows["base"].unique())
    colors = palette.series_colors([(base, "") for base in bases])
    with style.figure_context():
        fig, grid = style.make_grid(len(found), 2)
        for row, (study, sub) in zip(grid, found, strict=True):
            for ax, kind in zip(row, ("real", "model"), strict=True):
                part = sub[sub["kind"] == kind]
                if part.empty:
                    panels.empty_panel(ax, palette.kind_label(kind))
                    continue
                for i, base in enumerate(bases):
                    for streams, linestyle in STYLES.items():
                        line = part[(part["base"] == base) & (part["streams"] == streams)]
                        if line.empty:
                            continue
                        label = palette.method_label(base) + ("" if streams == "searched" else
                                                              ", residual stream left in place")
                        panels.mean_line(ax, selection.mean_sd(line, "width"), "width", color=colors[(base, "")],
                                         label=label, linestyle=linestyle, marker=palette.method_marker(base, i))
                panels.format_study_axis(ax, "width", study.arch, part["width"])
                ax.set_ylabel(ylabel)
                ax.set_title(f"{palette.arch_label(study.arch)} \u00b7 {study.caption} \u00b7 "
                             f"{palette.kind_label(kind)}", fontsize=8)
        note = "; ".join(p for p in ("mean over pairs", panels.BAND, selection.bn_mode_note(tables, options),
                                     "S': the copies' streams were permuted, so leaving them in place keeps that")
                         if p)
        fig.suptitle(f"{title}\n({note})")
        panels.axes_legend(fig, panels.flat(grid), "search method")
        style.save_figure(fig, out)
