"""The trained networks themselves: train and test error and loss vs width and vs depth (the paper's Figs. 8, 9)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.plotting import notes, palette, panels, selection, style

__all__ = ["training_summary", "training_vs_depth"]


def training_summary(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 8 analogue: train (solid) and test (dotted) error and loss vs width of the trained seeds.

    Only ``models`` rows of kind ``real`` (the permuted copies of kind ``model`` compute the same function as
    their seed). Panel rows: each arch's width study; columns: error, loss; colour = dataset; mean over seeds
    with a +/-1 s.d. band. Options: ``depth`` (each arch's width study), ``dataset``/``arch`` filters.
    """
    _summary(tables, Path(out), options, "width")


def training_vs_depth(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 9 analogue: as :func:`training_summary` against depth, one panel row per arch's depth study
    (option ``width``: the width each arch's depth study fixes)."""
    _summary(tables, Path(out), options, "depth")


def _summary(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any], axis: str) -> None:
    title = f"Trained networks: error and loss vs {axis}"
    rows = selection.read_table(tables, "models", selection.MODEL_READ)
    rows = selection.filter_labels(rows, options, ["dataset", "arch"]).dropna(subset=["depth", "width"])
    found, datasets = selection.studies_and_datasets(rows[rows["kind"] == "real"], options, axis)
    if not found:
        style.no_data_figure(out, f"trained networks (kind real) of a {axis} study", title)
        return
    with style.figure_context():
        fig, grid = style.make_grid(len(found), 2)
        for row_axes, (study, panel) in zip(grid, found, strict=True):
            for ax, quantity in zip(row_axes, ("error", "loss"), strict=True):
                for i, dataset, sub in selection.rows_by_dataset(panel, datasets):
                    for split in ("train", "test"):
                        column = f"{split}_{quantity}"
                        panels.mean_line(
                            ax, selection.mean_sd(sub.dropna(subset=[column]), axis, column), axis,
                            color=palette.dataset_color(dataset, i), linestyle="-" if split == "train" else ":",
                            label=f"{palette.dataset_label(dataset)}, {split}",
                        )  # fmt: skip
                panels.format_study_axis(ax, axis, study.arch, panel[axis])
                ax.set_ylabel(quantity)
                ax.set_title(f"{palette.arch_label(study.arch)} \u00b7 {quantity} \u00b7 "
                             f"{study.fixed_axis} {study.fixed}")
        stopping = notes.stopping_note(tables)
        fig.suptitle(f"{title}\n(solid: train, dotted: test; mean over seeds, band: \u00b11 s.d.)"
                     + (f"\n{stopping}" if stopping else ""))
        panels.axes_legend(fig, panels.flat(grid), "dataset, split")
        style.save_figure(fig, out)
