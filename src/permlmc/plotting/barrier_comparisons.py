"""Barriers compared across configurations: the paper's Fig. 1 (right) and Fig. 4c, and the BatchNorm
modes along the path (``interpolate`` as the paper, ``reset``, ``repair``) side by side.

Options (see :mod:`permlmc.plotting.selection`): ``split``, ``metric``, ``value``, ``dataset``/``arch``/``residual``
filters; ``bn_mode`` (except :func:`bn_modes`, which shows them all) and ``methods`` where stated.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from permlmc.plotting import palette, panels, selection, style

__all__ = ["bn_modes", "error_vs_barrier", "real_vs_model_scatter"]

CONFIG = selection.CONFIG


def _scatter_limits(values: np.ndarray) -> tuple[float, float]:
    """Equal x/y limits covering ``values`` and 0, padded by 5%."""
    low, high = min(0.0, float(values.min())), float(values.max())
    pad = 0.05 * (high - low) if high > low else 0.05
    return low - pad, high + pad


def real_vs_model_scatter(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 1 (right) and Fig. 10: mean barrier of S (x) vs S' (y) per (dataset, arch, depth, width, method),
    all configurations in the first panel (Fig. 1) and, where there are several, one panel per architecture and
    dataset (Fig. 10); the marker names the search (SA's points among them).

    Also reads ``bn_mode`` and ``methods`` (default all).
    """
    out = Path(out)
    rows, ylabel = selection.barrier_rows(tables, options)
    methods = selection.method_option(options)
    if methods is not None:
        rows = rows[rows["method"].isin(methods)]
    title = f"{ylabel}: real world S vs our model S\u2032"
    rows = rows[rows["kind"].isin(selection.KINDS)]
    index = [*CONFIG, "method", "sa_schedule"]
    means = rows.groupby([*index, "kind"])["y"].mean().unstack("kind") if not rows.empty else pd.DataFrame()
    kinds = list(selection.KINDS)
    points = means.dropna(subset=kinds).reset_index() if set(kinds) <= set(means.columns) else pd.DataFrame()
    if points.empty:
        style.no_data_figure(out, f"{ylabel} with both kinds real and model for one configuration", title)
        return
    keys = selection.series_keys(points, methods)
    colors = palette.series_colors(keys)
    panels_of = [("all configurations", points)]
    by_task = list(points.groupby(["arch", "dataset"]))
    if len(by_task) > 1:
        panels_of += [(f"{palette.arch_label(arch)} \u00b7 {palette.dataset_label(dataset)}", part)
                      for (arch, dataset), part in by_task]
    nrows, ncols = style.grid_shape(len(panels_of), 4)
    lims = _scatter_limits(points[kinds].to_numpy(dtype=float).ravel())
    with style.figure_context():
        fig, grid = style.make_grid(nrows, ncols, panel=(4.2, 4.2) if len(panels_of) == 1 else (3.2, 3.2))
        for ax, (name, part) in zip(panels.flat(grid), panels_of, strict=False):
            _scatter_panel(ax, part, keys, colors, lims, ylabel)
            ax.set_title(f"{name} ({len(part)} points)", fontsize=8)
        panels.hide_unused(grid, len(panels_of))
        note = "; ".join(p for p in ("mean over pairs", selection.bn_mode_note(tables, options)) if p)
        fig.suptitle(f"{title}\n(one point per dataset, arch, depth, width and method; {note})")
        panels.axes_legend(fig, [grid[0][0]], "search method")
        style.save_figure(fig, out)


def _scatter_panel(ax: Axes, points: pd.DataFrame, keys: list[tuple[str, str]], colors: Mapping[Any, Any],
                   lims: tuple[float, float], ylabel: str) -> None:
    """S (x) against S' (y), one marker per search method, on the line y = x."""
    for i, key in enumerate(keys):
        sub = points[(points["method"] == key[0]) & (points["sa_schedule"] == key[1])]
        ax.scatter(
            sub["real"], sub["model"], color=colors[key], marker=palette.method_marker(key[0], i),
            label=f"{palette.method_label(*key)}", alpha=0.8, edgecolors="white", linewidths=0.4,
        )  # fmt: skip
    ax.plot(lims, lims, color="0.4", linestyle="--", linewidth=1.0, label="y = x")
    ax.set(xlim=lims, ylim=lims, xlabel=f"real world S: mean {ylabel}", ylabel=f"our model S\u2032: mean {ylabel}")
    ax.set_aspect("equal", adjustable="box")


def _pearson(x: pd.Series, y: pd.Series) -> str:
    """``, r = 0.93`` for at least three points that vary, else ''."""
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return ""
    return f", r = {np.corrcoef(x.to_numpy(dtype=float), y.to_numpy(dtype=float))[0, 1]:.2f}"


def error_vs_barrier(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 4c: test error of the trained networks (x) vs barrier before permutation (y).

    One point per (dataset, arch, depth, width): x = mean test error over the trained seeds (``models``,
    kind real), y = mean barrier over real-world pairs (kind real, method none). Colour = architecture family
    (the legend gives each family's Pearson r), marker = dataset. Also reads ``bn_mode``.
    """
    out = Path(out)
    rows, ylabel = selection.barrier_rows(tables, options)
    rows = rows[(rows["kind"] == "real") & (rows["method"] == "none")]
    models = selection.read_table(tables, "models", selection.MODEL_READ)
    models = selection.filter_labels(models, options, ["dataset", "arch"])
    models = models[models["kind"] == "real"].dropna(subset=["test_error", "depth", "width"])
    points = pd.concat(
        [models.groupby(CONFIG)["test_error"].mean(), rows.groupby(CONFIG)["y"].mean()], axis=1, join="inner"
    ).reset_index()
    title = f"Test error vs {ylabel} (real world S, before permutation)"
    if points.empty:
        style.no_data_figure(out, f"networks with both a test error (models) and a {ylabel} (kind real)", title)
        return
    archs = sorted(points["arch"].unique())
    datasets = sorted(points["dataset"].unique())
    with style.figure_context():
        fig, grid = style.make_grid(1, 1, panel=(5.0, 4.0))
        ax = grid[0][0]
        handles: list[Any] = []
        for i, arch in enumerate(archs):
            family = points[points["arch"] == arch]
            color = palette.arch_color(arch, i)
            for j, dataset, sub in selection.rows_by_dataset(family, datasets):
                ax.scatter(
                    sub["test_error"], sub["y"], color=color, marker=palette.dataset_marker(dataset, j), s=30,
                    alpha=0.85, edgecolors="white", linewidths=0.4,
                )  # fmt: skip
            label = f"{palette.arch_label(arch)} (n={len(family)}{_pearson(family['test_error'], family['y'])})"
            handles.append(Patch(color=color, label=label))
        for j, dataset in enumerate(datasets):
            marker = palette.dataset_marker(dataset, j)
            label = palette.dataset_label(dataset)
            handles.append(Line2D([], [], color="0.3", marker=marker, linestyle="", label=label))
        ax.set_xlabel("test error of the trained networks (mean over seeds)")
        ax.set_ylabel(f"{ylabel} (mean over pairs)")
        lines = [title, "one point per dataset, arch, depth and width (x: mean over seeds, y: mean over pairs)"]
        fig.suptitle("\n".join([*lines, selection.bn_mode_note(tables, options)]).strip())
        style.legend_below(fig, handles, [str(h.get_label()) for h in handles], "colour: family; marker: dataset")
        style.save_figure(fig, out)


def _mode_bars(ax: Axes, rows: pd.DataFrame, keys: list[tuple[str, str]], modes: list[str]) -> None:
    """Grouped bars: one group per search method (``keys``), one bar per BatchNorm mode (mean +/- 1 s.d.)."""
    stats = selection.mean_sd(rows, ["method", "sa_schedule", "bn_mode"])
    bar = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        for i, key in enumerate(keys):
            hit = stats[(stats["method"] == key[0]) & (stats["sa_schedule"] == key[1]) & (stats["bn_mode"] == mode)]
            if hit.empty:
                continue
            ax.bar(
                i + (j - (len(modes) - 1) / 2) * bar, hit["mean"].iloc[0], width=bar, yerr=hit["std"].iloc[0],
                color=palette.bn_mode_color(mode, j), label=palette.bn_mode_label(mode), capsize=2,
                error_kw={"linewidth": 0.8},
            )  # fmt: skip
    ax.set_xticks(range(len(keys)), [textwrap.fill(palette.method_label(*key), 16) for key in keys], fontsize=7)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.grid(False, axis="x")


def bn_modes(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """BatchNorm statistics along the path compared: the barrier per search method with the running statistics
    interpolated (the paper), recomputed (``reset``) or REPAIRed (``repair``, Jordan et al. 2022).

    Networks with BatchNorm only (those with a mode besides ``interpolate``). One panel per (arch, depth,
    width, dataset), wrapped four to a row, kind real above kind model; bars are the mean over pairs with
    +/-1 s.d. whiskers. Also reads ``methods`` (default all); ``bn_mode`` is ignored (every mode is shown).
    """
    out = Path(out)
    rows, ylabel = selection.barrier_rows(tables, options, every_bn_mode=True)
    rows = rows[rows["kind"].isin(selection.KINDS)]
    methods = selection.method_option(options)
    if methods is not None:
        rows = rows[rows["method"].isin(methods)]
    rows = rows.merge(selection.batchnorm_configs(rows), on=CONFIG)
    title = f"{ylabel} by BatchNorm statistics along the path"
    if rows.empty:
        what = f"BatchNorm networks (VGG, ResNet) with bn modes besides interpolate: {ylabel}"
        style.no_data_figure(out, what, title)
        return
    keys = selection.series_keys(rows, methods)
    present = set(rows["bn_mode"])
    modes = [m for m in selection.BN_MODES if m in present] + sorted(present - set(selection.BN_MODES))
    networks = sorted(set(zip(rows["arch"], rows["depth"], rows["width"], rows["dataset"], strict=True)))
    blocks, ncols = style.grid_shape(len(networks), 4)
    with style.figure_context():
        fig, grid = style.make_grid(2 * blocks, ncols, panel=(3.6, 2.8))
        for n, (arch, depth, width, dataset) in enumerate(networks):
            block, column = divmod(n, ncols)
            network = rows[(rows["arch"] == arch) & (rows["depth"] == depth) & (rows["width"] == width)]
            network = network[network["dataset"] == dataset]
            for k, kind in enumerate(selection.KINDS):
                ax = grid[2 * block + k][column]
                name = palette.network_label(arch, int(depth), int(width))
                ax.set_title(f"{palette.dataset_label(dataset)} \u00b7 {name}\n{palette.kind_label(kind)}")
                part = network[network["kind"] == kind]
                if part.empty:
                    panels.empty_panel(ax, f"kind {kind}")
                    continue
                _mode_bars(ax, part, keys, modes)
                ax.set_ylabel(ylabel)
        for column in range(len(networks) - (blocks - 1) * ncols, ncols):  # the last block's unused columns
            grid[-2][column].set_visible(False)
            grid[-1][column].set_visible(False)
        fig.suptitle(f"{title}\n(networks with BatchNorm; mean over pairs, whiskers: \u00b11 s.d.)")
        panels.axes_legend(fig, panels.flat(grid), "BatchNorm statistics along the path")
        style.save_figure(fig, out)
