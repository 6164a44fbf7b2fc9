"""How the permutation searches compare (paper App. A.4 and B, and beyond): barrier and wall time per
method, recovery of planted permutations on S', SA's barrier against its number of steps (Fig. 14 /
Table 2), and barrier against search compute for every method.

Options (see :mod:`permlmc.plotting.selection`): ``split``, ``metric``, ``value``, ``bn_mode``, ``depth`` (each
arch's width study), ``dataset``/``arch``/``residual`` filters, ``methods``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from permlmc.plotting import palette, panels, selection, style

__all__ = ["barrier_vs_compute", "method_comparison", "planted_recovery", "sa_scaling", "sa_scaling_table"]

COLUMNS = [*selection.BARRIER_READ, "algorithm", "search_seconds", "recovery"]
"""The barrier columns these figures (and Table 2) read."""


def _method_lines(ax: Axes, rows: pd.DataFrame, y: str, methods: list[str] | None) -> None:
    """One mean line per (method, schedule) against width."""
    keys = selection.series_keys(rows, methods)
    colors = palette.series_colors(keys)
    for i, key in enumerate(keys):
        part = rows[(rows["method"] == key[0]) & (rows["sa_schedule"] == key[1])]
        stats = selection.mean_sd(part, "width", y)
        panels.mean_line(ax, stats, "width", color=colors[key], label=palette.method_label(*key),
                         marker=palette.method_marker(key[0], i))


def _width_panels(
    tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any], rows: pd.DataFrame,
    panels_of: list[tuple[str, str, str, bool]], title: str,
) -> None:
    """A row of panels per arch's width study; ``panels_of``: (kind, y column, y label, log y)."""
    found = selection.studies_with_rows(rows, options, "width")
    if not found:
        style.no_data_figure(out, title, title)
        return
    methods = selection.method_option(options)
    with style.figure_context():
        fig, grid = style.make_grid(len(found), len(panels_of))
        for row, (study, sub) in zip(grid, found, strict=True):
            for ax, (kind, y, ylabel, log) in zip(row, panels_of, strict=True):
                part = sub[(sub["kind"] == kind) & sub[y].notna()]
                if part.empty:
                    panels.empty_panel(ax, f"{palette.kind_label(kind)}, {ylabel}")
                    continue
                _method_lines(ax, part, y, methods)
                panels.format_study_axis(ax, "width", study.arch, part["width"])
                if log:
                    ax.set_yscale("log")
                ax.set_ylabel(ylabel)
                where = f"{palette.arch_label(study.arch)} \u00b7 {study.caption}"
                ax.set_title(f"{where} \u00b7 {palette.kind_label(kind)}", fontsize=8)
        note = "; ".join(p for p in ("mean over pairs", panels.BAND, selection.bn_mode_note(tables, options)) if p)
        fig.suptitle(f"{title}\n({note})")
        panels.axes_legend(fig, panels.flat(grid), "search method")
        style.save_figure(fig, out)


def method_comparison(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Barrier after each search method vs width for S and S', and each method's wall time."""
    rows, ylabel = selection.barrier_rows(tables, options, columns=COLUMNS)
    rows = rows.assign(seconds=rows["search_seconds"].clip(lower=1e-4))
    _width_panels(tables, Path(out), options, rows, [
        ("real", "y", ylabel, False), ("model", "y", ylabel, False), ("real", "seconds", "search wall time (s)", True),
    ], "Search methods compared: barrier after search and wall time")


def planted_recovery(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """S' pairs: fraction of units each search maps back to their planted place, and the barrier it leaves."""
    rows, ylabel = selection.barrier_rows(tables, options, columns=COLUMNS)
    rows = rows[rows["kind"] == "model"]
    _width_panels(tables, Path(out), options, rows, [
        ("model", "recovery", "units recovered (fraction)", False), ("model", "y", ylabel, False),
    ], "Planted-permutation recovery on our model S'")


def sa_steps(rows: pd.DataFrame) -> pd.DataFrame:
    """SA rows with their number of steps: ``sa-stepsN`` variants (the plain ``sa`` is not a sweep point)."""
    steps = rows["method"].str.extract(r"^sa-steps(\d+)$")[0]
    return rows.assign(steps=pd.to_numeric(steps, errors="coerce")).dropna(subset=["steps"])


def sa_scaling_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Paper Table 2: mean barrier per (network, steps) and ``delta`` = barrier at the previous sweep point /
    barrier here (with tenfold steps between points, 2 means ten times the steps halve the barrier; 1 means it
    plateaued), plus mean wall time."""
    stats = rows.groupby([*selection.CONFIG, "kind", "steps"]).agg(
        barrier=("y", "mean"), seconds=("search_seconds", "mean"), pairs=("y", "count")).reset_index()
    stats = stats.sort_values([*selection.CONFIG, "kind", "steps"])
    previous = stats.groupby([*selection.CONFIG, "kind"])["barrier"].shift(1)
    return stats.assign(delta=previous / stats["barrier"])


def sa_scaling(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 14 / Table 2: barrier after SA against its number of steps (log), one line per width;
    the delta of each tenfold step increase is printed under its point."""
    rows, ylabel = selection.barrier_rows(tables, options, columns=COLUMNS, variants=True)
    rows = sa_steps(rows[rows["kind"] == "real"])
    title = "Scaling simulated annealing: barrier vs steps (real world S)"
    if rows.empty:
        style.no_data_figure(Path(out), "SA step sweeps (methods sa-stepsN)", title)
        return
    table = sa_scaling_table(rows)
    groups = table.groupby(["dataset", "arch", "depth"])
    widths = palette.width_colors(table["width"].unique())
    with style.figure_context():
        fig, grid = style.make_grid(1, len(groups))
        for ax, ((dataset, arch, depth), part) in zip(grid[0], groups, strict=True):
            for width, line in part.groupby("width"):
                ax.plot(line["steps"], line["barrier"], marker="o", color=widths[int(width)],
                        label=f"width {int(width)}")
                for _, point in line.dropna(subset=["delta"]).iterrows():
                    ax.annotate(f"\u0394={point['delta']:.2f}", (point["steps"], point["barrier"]),
                                textcoords="offset points", xytext=(0, -10), ha="center", fontsize=6)
            ax.set_xscale("log")
            ax.set_xlabel("SA steps")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{palette.dataset_label(dataset)} \u00b7 {palette.arch_label(arch)} depth {depth}",
                         fontsize=8)
        fig.suptitle(f"{title}\n(mean over pairs; \u0394 = barrier at the previous step count / barrier)")
        panels.axes_legend(fig, panels.flat(grid), "network")
        style.save_figure(fig, Path(out))


def barrier_vs_compute(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Barrier against search wall time, one curve per algorithm through its compute sweep (SA steps, weight
    matching sweeps, activation subset size, ...), one panel per network."""
    rows, ylabel = selection.barrier_rows(tables, options, columns=COLUMNS, variants=True)
    rows = rows[(rows["kind"] == "real") & (rows["algorithm"] != "")]
    compute = rows["method"].map(selection.compute_variant).astype(bool)
    rows = rows[compute | ~rows["method"].str.contains("-", regex=False)]  # other variants are methods of their own
    swept = rows.groupby([*selection.CONFIG])["method"].transform(lambda m: m.map(selection.compute_variant).any())
    rows = rows[swept.astype(bool)]
    title = "Barrier vs search compute (real world S)"
    if rows.empty:
        style.no_data_figure(Path(out), "compute sweeps (method variants such as sa-steps100)", title)
        return
    networks = rows.groupby(selection.CONFIG)
    nrows, ncols = style.grid_shape(len(networks), 3)
    with style.figure_context():
        fig, grid = style.make_grid(nrows, ncols)
        for ax, ((dataset, arch, depth, width), part) in zip(panels.flat(grid), networks, strict=False):
            stats = part.groupby(["algorithm", "method"]).agg(
                y=("y", "mean"), seconds=("search_seconds", "mean")).reset_index()
            for i, (algorithm, line) in enumerate(stats.groupby("algorithm", sort=False)):
                line = line.sort_values("seconds")
                ax.plot(np.maximum(line["seconds"], 1e-4), line["y"], marker=palette.method_marker(algorithm, i),
                        color=palette.series_colors([(algorithm, "")])[(algorithm, "")],
                        label=palette.method_label(algorithm))
            ax.set_xscale("log")
            ax.set_xlabel("search wall time (s)")
            ax.set_ylabel(ylabel)
            ax.set_title(palette.network_title(dataset, arch, depth, width), fontsize=8)
        panels.hide_unused(grid, len(networks))
        fig.suptitle(f"{title}\n(mean over pairs; each point one setting of the method's compute knob)")
        panels.axes_legend(fig, panels.flat(grid), "search method")
        style.save_figure(fig, Path(out))
