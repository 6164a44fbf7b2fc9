"""Architecture against task (the paper's Fig. 4a and 4b): the test error of the trained networks and their barrier
before permutation as a dataset x architecture grid.

Each architecture is represented by one network per dataset: the widest of its width study (the depth the workflow
passes as the ``depth`` option, else the depth with the most widths; an architecture without a width study by its
widest network), as the paper compares families at their largest size. Options: ``split``, ``metric``,
``value``, ``bn_mode``, ``depth``, ``dataset``/``arch`` filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from permlmc.plotting import palette, selection, style

__all__ = ["task_grid", "task_grid_cells"]

CONFIG = selection.CONFIG


def _network_of(arch: str, sizes: pd.DataFrame, options: Mapping[str, Any]) -> tuple[int, int]:
    """(depth, width) standing for ``arch`` among the (depth, width) rows of ``sizes``."""
    depth = selection.arch_setting(options, "depth", arch)
    if depth is None or depth not in set(sizes["depth"]):
        counts = sizes.groupby("depth")["width"].nunique()
        depth = int(counts[counts == counts.max()].index.min())
    return depth, int(sizes.loc[sizes["depth"] == depth, "width"].max())


def task_grid_cells(tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> tuple[pd.DataFrame, str]:
    """One row per (dataset, arch) with the network standing for it (``depth``, ``width``), its mean test error
    over the trained seeds and its mean barrier over real pairs before permutation (``barrier``); and the
    barrier's label."""
    rows, ylabel = selection.barrier_rows(tables, options)
    rows = rows[(rows["kind"] == "real") & (rows["method"] == "none")]
    barrier = rows.groupby(CONFIG)["y"].mean().rename("barrier")
    models = selection.read_table(tables, "models", selection.MODEL_READ)
    models = selection.filter_labels(models, options, ["dataset", "arch"])
    error = models[models["kind"] == "real"].groupby(CONFIG)["test_error"].mean()
    both = pd.concat([error, barrier], axis=1, join="inner").reset_index()
    cells = []
    for arch, part in both.groupby("arch"):
        depth, width = _network_of(str(arch), part[["depth", "width"]].drop_duplicates(), options)
        cells.append(part[(part["depth"] == depth) & (part["width"] == width)])
    frame = pd.concat(cells, ignore_index=True) if cells else pd.DataFrame(columns=[*CONFIG, "test_error", "barrier"])
    return frame, ylabel


def _heatmap(ax: Axes, cells: pd.DataFrame, column: str, datasets: list[str], archs: list[str], title: str) -> None:
    grid = np.full((len(datasets), len(archs)), np.nan)
    for _, cell in cells.iterrows():
        grid[datasets.index(cell["dataset"]), archs.index(cell["arch"])] = cell[column]
    image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=max(float(np.nanmax(grid)), 1e-6), aspect="auto")
    for (r, c), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value < 0.6 * np.nanmax(grid) else "black")
    labels = {a: cells.loc[cells["arch"] == a, ["depth", "width"]].iloc[0] for a in archs}
    ax.set_xticks(range(len(archs)), [palette.network_label(a, int(labels[a]["depth"]), int(labels[a]["width"]))
                                      for a in archs], fontsize=7, rotation=20)
    ax.set_yticks(range(len(datasets)), [palette.dataset_label(d) for d in datasets], fontsize=7)
    ax.grid(False)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def task_grid(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 4a (test error) and 4b (barrier before permutation) side by side: rows datasets, columns
    architectures, each cell's value written in it."""
    out = Path(out)
    cells, ylabel = task_grid_cells(tables, options)
    title = "Architecture and task: test error and barrier (real world S, before permutation)"
    if cells.empty:
        style.no_data_figure(out, f"networks with a test error (models) and a {ylabel} (kind real, method none)",
                             title)
        return
    datasets = sorted(cells["dataset"].unique())
    archs = sorted(cells["arch"].unique())
    with style.figure_context():
        fig, grid = style.make_grid(1, 2, panel=(max(3.6, 1.3 * len(archs)), max(2.4, 0.6 * len(datasets) + 1.4)))
        _heatmap(grid[0][0], cells, "test_error", datasets, archs, "(a) test error (mean over seeds)")
        _heatmap(grid[0][1], cells, "barrier", datasets, archs, f"(b) {ylabel} (mean over pairs)")
        fig.suptitle(f"{title}\n(each architecture at the widest network of its width study)")
        style.save_figure(fig, out)
