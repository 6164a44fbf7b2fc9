"""Group searches (§4.2): the average pairwise barrier of n models permuted by SA1, SA2 or a pairwise method
aligning all to the first (``groups`` table), per network and along the width and depth studies beside SA on
pairs (n = 2, ``barriers`` table): the paper's Figs. 6, 11 and 12.

Options: ``metric``/``value`` as for every barrier figure (:func:`permlmc.plotting.study_tables.many_model_barrier`;
group barriers are train barriers, measured like the pairs' on the curves' training examples, every path with
interpolated BatchNorm statistics), ``dataset``/``arch`` filters, ``group_method`` (default ``sa2``, the paper's SA)
and ``pair_method`` (default ``sa``). The studies are those the group networks form.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from permlmc.plotting import palette, panels, selection, study_tables, style

__all__ = ["GROUP_COLUMNS", "group_rows", "group_searches", "group_vs_pairs"]

GROUP_COLUMNS = [*selection.CONFIG, "kind", "method", "models", "stage", "loss_barrier", "error_barrier",
                 "loss_barrier_mid", "error_barrier_mid"]


def group_rows(tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> pd.DataFrame:
    """The ``groups`` table, filtered by the label options (empty when absent)."""
    frame = selection.read_table(tables, "groups", GROUP_COLUMNS, rerun="search_group")
    return selection.filter_labels(frame, options, ["dataset", "arch"])


def group_searches(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """§4.2: average pairwise barrier of n models after SA1, SA2 and pairwise methods (aligning every model to
    the first), one bar per method for each network, the barrier before search as a black tick; one row of panels
    per (dataset, arch), one column per kind (trained seeds S, permuted copies S')."""
    column, ylabel = study_tables.many_model_barrier(options)
    frame = group_rows(tables, options)
    title = f"Group searches: average pairwise {ylabel} of n models"
    if frame.empty:
        style.no_data_figure(Path(out), "group searches", title)
        return
    tasks = list(frame.groupby(["dataset", "arch"]))
    kinds = [k for k in selection.KINDS if k in set(frame["kind"])]
    methods = sorted(set(frame["method"]), key=lambda m: (selection.METHOD_ORDER + (m,)).index(m))
    colors = palette.series_colors([(m, "") for m in methods])
    most = max(len(task[["depth", "width"]].drop_duplicates()) for _, task in tasks)  # networks in one panel
    with style.figure_context():
        fig, grid = style.make_grid(len(tasks), len(kinds), panel=(max(4.0, 1.0 + 0.15 * most * len(methods)), 3.2))
        for row, ((dataset, arch), task) in zip(grid, tasks, strict=True):
            for ax, kind in zip(row, kinds, strict=True):
                _group_bars(ax, task[task["kind"] == kind], column, methods, colors)
                ax.set_ylabel(ylabel)
                ax.set_title(f"{palette.dataset_label(dataset)} \u00b7 {palette.arch_label(arch)} \u00b7 "
                             f"{palette.kind_label(kind, pairs=False)}", fontsize=8)
        n = ", ".join(str(int(m)) for m in sorted(frame["models"].unique()))
        fig.suptitle(f"{title}\n(n = {n}; black tick: the n models before search)")
        panels.axes_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))


def _group_bars(ax: Axes, rows: pd.DataFrame, column: str, methods: list[str], colors: Mapping[Any, Any]) -> None:
    networks = sorted({(int(d), int(w)) for d, w in zip(rows["depth"], rows["width"], strict=True)})
    step = 0.8 / len(methods)
    for i, (depth, width) in enumerate(networks):
        net = rows[(rows["depth"] == depth) & (rows["width"] == width)]
        before = net.loc[net["stage"] == "before", column].mean()
        ax.plot([i - 0.4, i + 0.4], [before, before], color="black", linewidth=1.5,
                label="before search" if i == 0 else None)
        for j, method in enumerate(methods):
            after = net.loc[(net["method"] == method) & (net["stage"] == "after"), column]
            if not after.empty:
                ax.bar(i - 0.4 + (j + 0.5) * step, after.mean(), width=step, color=colors[(method, "")],
                       label=palette.method_label(method) if i == 0 else None)
    arch = str(rows["arch"].iloc[0]) if not rows.empty else ""
    ax.set_xticks(np.arange(len(networks)), [palette.network_label(arch, d, w) for d, w in networks], rotation=30,
                  ha="right", fontsize=7)


def group_vs_pairs(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Figs. 6, 11 and 12: the barrier along each width and depth study after SA over n models at once (SA2 by
    default: the paper's Figs. 6 and 12 left, 11) and after SA on pairs (n = 2, the search space reduced: Figs. 6
    and 12 right), for real seeds S and permuted copies S'; faint dotted: the n models before search. One row per
    (arch, study), one column per dataset. A group search spreads its steps over the n - 1 moved models."""
    column, ylabel = study_tables.many_model_barrier(options)
    group_method = str(options.get("group_method") or "sa2")
    pair_method = str(options.get("pair_method") or "sa")
    groups = group_rows(tables, options)
    groups = groups[groups["method"] == group_method]
    pair_options = {**options, "split": "train", "metric": study_tables.many_model_metric(options),
                    "bn_mode": "interpolate"}  # the group barriers' own path
    pairs, _ = selection.barrier_rows(tables, pair_options)
    pairs = pairs[pairs["method"] == pair_method]
    schedule = next(iter(sorted(set(pairs["sa_schedule"]))), "")
    title = (f"Search space: {palette.method_label(group_method)} over n models vs "
             f"{palette.method_label(pair_method, schedule)} on pairs")
    own = {k: v for k, v in options.items() if k not in ("depth", "width")}  # the studies the groups form
    found = [(s, s.rows(groups)) for axis in ("width", "depth") for s in selection.studies(groups, own, axis)]
    if not found:
        style.no_data_figure(Path(out), f"group searches ({group_method}) along a width or depth study", title)
        return
    datasets = sorted(groups["dataset"].unique())
    n = ", ".join(str(int(m)) for m in sorted(groups["models"].unique()))
    with style.figure_context():
        fig, grid = style.make_grid(len(found), len(datasets))
        for row, (study, sub) in zip(grid, found, strict=True):
            for ax, dataset in zip(row, datasets, strict=True):
                ax.set_title(f"{palette.dataset_label(dataset)} \u00b7 {palette.arch_label(study.arch)} "
                             f"\u00b7 {study.caption}")
                panel = sub[sub["dataset"] == dataset]
                if panel.empty:
                    panels.empty_panel(ax, f"{dataset} {study.arch}")
                    continue
                theirs = study.rows(pairs[pairs["dataset"] == dataset])
                theirs = theirs[theirs[study.axis].isin(set(panel[study.axis]))]  # the group networks' points
                labels = (f"{palette.method_label(group_method)}, n = {n}",
                          f"{palette.method_label(pair_method, schedule)}, n = 2")
                _draw_searches(ax, study, panel.assign(y=panel[column]), theirs, labels)
                ax.set_ylabel(ylabel)
        fig.suptitle(f"{title}\n(n models: mean over the n(n-1)/2 pairs of each group; n = 2: mean over disjoint "
                     f"pairs, {panels.BAND})")
        panels.axes_legend(fig, panels.flat(grid), "kind")
        style.save_figure(fig, Path(out))


def _draw_searches(ax: Axes, study: selection.Study, groups: pd.DataFrame, pairs: pd.DataFrame,
                   labels: tuple[str, str]) -> None:
    axis = study.axis
    for kind in selection.KINDS:
        color, name = palette.kind_color(kind), palette.kind_label(kind, pairs=False)
        mine = groups[groups["kind"] == kind]
        before, after = mine[mine["stage"] == "before"], mine[mine["stage"] == "after"]
        if not before.empty:
            panels.mean_line(ax, selection.mean_sd(before, axis), axis, color=color, label=f"{name}, before search",
                             linestyle=":", marker=None, alpha=0.5, band=False)
        if not after.empty:
            panels.mean_line(ax, selection.mean_sd(after, axis), axis, color=color, label=f"{name}, {labels[0]}",
                             marker="o", band=False)
        theirs = pairs[pairs["kind"] == kind]
        if not theirs.empty:
            panels.mean_line(ax, selection.mean_sd(theirs, axis), axis, color=color, label=f"{name}, {labels[1]}",
                             linestyle="--", marker="s")
    panels.format_study_axis(ax, axis, study.arch, [*groups[axis], *pairs[axis]])
