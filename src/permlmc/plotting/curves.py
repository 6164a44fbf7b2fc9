"""Figures of whole curves: loss/error along the linear path (Eq. 1) and simulated annealing traces."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from permlmc.plotting import palette, panels, selection, style

__all__ = ["interpolation_curves", "sa_energy"]


def _curve_network(rows: pd.DataFrame, options: Mapping[str, Any], arch: str) -> tuple[int, int] | None:
    """(depth, width) of the network of ``arch`` whose curves are drawn: the ``depth``/``width`` options
    where given, else the median width present and the smallest depth at that width."""
    sub = rows[rows["arch"] == arch]
    depth = selection.arch_setting(options, "depth", arch)
    width = selection.arch_setting(options, "width", arch)
    if depth is not None:
        sub = sub[sub["depth"] == depth]
    if width is not None:
        sub = sub[sub["width"] == width]
    if sub.empty:
        return None
    if width is None:
        widths = sorted(sub["width"].unique())
        width = int(widths[(len(widths) - 1) // 2])
    if depth is None:
        depth = int(sub.loc[sub["width"] == width, "depth"].min())
    return depth, width


def _draw_curves(ax: Axes, panel: pd.DataFrame, keys: list[tuple[str, str]]) -> None:
    """Mean curve per (method, kind); the straight line between the ``none`` curve's ends (Eq. 1 baseline)."""
    colors = palette.series_colors(keys)
    for key in keys:
        for kind in selection.KINDS:
            part = panel[(panel["method"] == key[0]) & (panel["sa_schedule"] == key[1]) & (panel["kind"] == kind)]
            if part.empty:
                continue
            stats = selection.mean_sd(part, "alpha", "value")
            linestyle = palette.kind_linestyle(kind)
            label = f"{palette.method_label(*key)}, {palette.kind_label(kind)}"
            panels.mean_line(
                ax, stats, "alpha", color=colors[key], label=label, linestyle=linestyle, marker=None, band=False
            )
            if key[0] == "none" and len(stats) >= 2:
                ends = stats.iloc[[0, -1]]
                ax.plot(
                    ends["alpha"], ends["mean"], color="0.6", linewidth=0.9, linestyle=linestyle, alpha=0.8,
                    label="straight line between endpoints (Eq. 1 baseline)",
                )  # fmt: skip


def interpolation_curves(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Loss/error along the linear path, one panel per (dataset, arch) x (split, metric).

    Hue = method, line style = kind, mean over pairs. A light straight line joins the endpoints of the
    ``none`` mean curve: the baseline Eq. 1 subtracts. One network per arch (see :func:`_curve_network`).
    Options: ``bn_mode``, ``depth``, ``width``, ``dataset``/``arch``/``residual`` filters.
    """
    out = Path(out)
    rows = selection.read_table(tables, "curves", selection.CURVE_READ)
    rows = selection.filter_labels(rows, options, ["dataset", "arch", "residual"])
    rows = selection.select_bn_mode(rows, options).dropna(subset=["alpha", "value", "depth", "width"])
    chosen = {arch: _curve_network(rows, options, arch) for arch in sorted(rows["arch"].unique())}
    networks = {arch: network for arch, network in chosen.items() if network is not None}
    keep = pd.Series(False, index=rows.index)
    for arch, (depth, width) in networks.items():
        keep |= (rows["arch"] == arch) & (rows["depth"] == depth) & (rows["width"] == width)
    rows = rows[keep]
    title = "Loss and error along the linear path"
    if rows.empty:
        style.no_data_figure(out, f"interpolation curves (bn mode {selection.bn_mode_option(options)})", title)
        return

    keys = selection.series_keys(rows)
    combos = sorted(set(zip(rows["dataset"], rows["arch"], strict=True)))
    present = set(zip(rows["split"], rows["metric"], strict=True))
    columns = [(s, m) for s in selection.SPLITS for m in selection.METRICS if (s, m) in present]
    with style.figure_context():
        fig, grid = style.make_grid(len(combos), len(columns))
        for row_axes, (dataset, arch) in zip(grid, combos, strict=True):
            network = palette.network_label(arch, *networks[arch])
            for ax, (split, metric) in zip(row_axes, columns, strict=True):
                panel = rows[
                    (rows["dataset"] == dataset) & (rows["arch"] == arch)
                    & (rows["split"] == split) & (rows["metric"] == metric)
                ]  # fmt: skip
                ax.set_title(f"{palette.dataset_label(dataset)} \u00b7 {network} \u00b7 {split} {metric}")
                ax.set_xlabel("\u03b1 (0 = model A, 1 = permuted model B)")
                ax.set_ylabel(f"{split} {metric}")
                if panel.empty:
                    panels.empty_panel(ax, f"{split} {metric}")
                else:
                    _draw_curves(ax, panel, keys)
        note = "; ".join(p for p in ("mean over pairs", selection.bn_mode_note(tables, options, "curves")) if p)
        fig.suptitle(f"{title} ({note})")
        panels.axes_legend(fig, panels.flat(grid), "method, kind")
        style.save_figure(fig, out)


def sa_energy(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """SA energy (faint) and best energy (bold) vs step (log x), one line per (width, kind, pair).

    Panels per (sa_schedule, dataset, arch, depth); colour = width, line style = kind. Options: optional
    ``sa_schedule``/``dataset``/``arch`` filters.
    """
    out = Path(out)
    rows = selection.read_table(tables, "sa_traces", selection.TRACE_READ)
    rows = selection.filter_labels(rows, options, ["sa_schedule", "dataset", "arch"])
    rows = rows.dropna(subset=["step", "width", "depth"])
    schedules = sorted(rows["sa_schedule"].unique())
    named = ", ".join(s or "unspecified" for s in schedules)
    title = "Simulated annealing: energy vs step" + (f" (SA schedule: {named})" if schedules else "")
    if rows.empty:
        style.no_data_figure(out, "simulated annealing traces", title)
        return
    rows = rows.astype({"depth": int, "width": int})
    keys = sorted(set(zip(rows["sa_schedule"], rows["dataset"], rows["arch"], rows["depth"], strict=True)))
    colors = palette.width_colors(rows["width"].tolist())
    nrows, ncols = style.grid_shape(len(keys), 3)
    with style.figure_context():
        fig, grid = style.make_grid(nrows, ncols)
        for ax, (schedule, dataset, arch, depth) in zip(panels.flat(grid), keys, strict=False):
            panel = rows[
                (rows["sa_schedule"] == schedule) & (rows["dataset"] == dataset)
                & (rows["arch"] == arch) & (rows["depth"] == depth)
            ]  # fmt: skip
            for (width, kind, _pair), trace in panel.groupby(["width", "kind", "pair"], sort=True):
                trace = trace.sort_values("step")
                color = colors[int(width)]
                linestyle = palette.kind_linestyle(str(kind))
                steps = trace["step"]
                ax.plot(steps, trace["energy"], color=color, linestyle=linestyle, linewidth=0.7, alpha=0.3)
                ax.plot(steps, trace["best_energy"], color=color, linestyle=linestyle, linewidth=1.5)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlabel("SA step (log)")
            ax.set_ylabel("energy (SA objective)")
            ax.set_title(
                f"{palette.dataset_label(dataset)} \u00b7 {palette.arch_label(arch)} \u00b7 depth {depth}\n"
                f"SA schedule: {schedule or 'unspecified'}"
            )
        panels.hide_unused(grid, len(keys))
        handles = [Line2D([], [], color=colors[w], label=f"width {w}") for w in sorted(colors)]
        for kind in sorted(rows["kind"].unique()):
            linestyle = palette.kind_linestyle(kind)
            handles.append(Line2D([], [], color="0.2", linestyle=linestyle, label=palette.kind_label(kind)))
        handles.append(Line2D([], [], color="0.2", linewidth=0.7, alpha=0.3, label="current energy"))
        handles.append(Line2D([], [], color="0.2", linewidth=1.5, label="best energy so far"))
        style.legend_below(fig, handles, [str(h.get_label()) for h in handles])
        fig.suptitle(f"{title}\n(one line per width, kind and pair)")
        style.save_figure(fig, out)
