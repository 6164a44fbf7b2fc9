"""Group searches (§4.2): the average pairwise barrier of n models permuted by SA1, SA2 or a pairwise method
aligning all to the first (``groups`` table), per network and along the width and depth studies beside SA on
pairs (n = 2, ``barriers`` table): the paper's Figs. 6, 11 and 12.

Options: ``metric``/``value`` as for every barrier figure (:func:`permlmc.plotting.selection.many_model_barrier`;
group barriers are train barriers), ``depth``/``width`` (the studies, as :func:`permlmc.plotting.selection.studies`),
``group_method`` (default ``sa2``, the paper's SA) and ``pair_method`` (default ``sa``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes

from permlmc.plotting import palette, panels, selection, style

__all__ = ["GROUP_COLUMNS", "group_searches", "group_vs_pairs"]

GROUP_COLUMNS = [*selection.CONFIG, "kind", "method", "models", "stage", "loss_barrier", "error_barrier",
                 "loss_barrier_mid", "error_barrier_mid"]
_NUMERIC = ["depth", "width", "models", "loss_barrier", "error_barrier", "loss_barrier_mid", "error_barrier_mid"]


def group_rows(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The ``groups`` table with its numbers as numbers (empty when absent)."""
    frame = tables.get("groups")
    if frame is None or frame.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    missing = [c for c in GROUP_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"table 'groups' lacks columns {missing}; it has {list(frame.columns)}")
    return frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce") for c in _NUMERIC})


def group_searches(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """§4.2: average pairwise barrier of n models before and after SA1, SA2 and pairwise methods (aligning
    every model to the first), for real seeds and permuted copies; one row of panels per network."""
    column, ylabel = selection.many_model_barrier(options)
    frame = group_rows(tables)
    title = f"Group searches: average pairwise {ylabel} of n models"
    if frame.empty:
        style.no_data_figure(Path(out), "group searches", title)
        return
    networks = list(frame.groupby(selection.CONFIG))
    kinds = [k for k in selection.KINDS if k in set(frame["kind"])]
    with style.figure_context():
        fig, grid = style.make_grid(len(networks), len(kinds))
        for row, (network, part) in zip(grid, networks, strict=True):
            for ax, kind in zip(row, kinds, strict=True):
                sub = part[part["kind"] == kind]
                methods = list(dict.fromkeys(sub["method"]))
                before = sub[sub["stage"] == "before"][column].mean()
                after = [sub[(sub["method"] == m) & (sub["stage"] == "after")][column].mean() for m in methods]
                colors = palette.series_colors([(m, "") for m in methods])
                ax.bar(range(len(methods)), after, color=[colors[(m, "")] for m in methods])
                ax.axhline(before, color="#555555", linestyle="--", label="before search")
                ax.set_xticks(range(len(methods)), [palette.method_label(m) for m in methods], rotation=30,
                              ha="right", fontsize=7)
                ax.set_ylabel(ylabel)
                models = int(sub["models"].iloc[0])
                ax.set_title(f"{palette.network_title(*network)} \u00b7 {palette.kind_label(kind)}, n = {models}",
                             fontsize=8)
        fig.suptitle(title)
        panels.figure_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))


def group_vs_pairs(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Figs. 6, 11 and 12: the barrier along each width and depth study after SA over n models at once (SA2 by
    default: the paper's Figs. 6 and 12 left, 11) and after SA on pairs (n = 2, the search space reduced: Figs. 6
    and 12 right), for real seeds S and permuted copies S'; faint dotted: the n models before search. One row per
    (arch, study), one column per dataset."""
    column, ylabel = selection.many_model_barrier(options)
    group_method = str(options.get("group_method") or "sa2")
    pair_method = str(options.get("pair_method") or "sa")
    groups = group_rows(tables)
    groups = groups[groups["method"].isin([group_method])]
    pairs, _ = selection.barrier_rows(tables, {**options, "split": "train"})
    pairs = pairs[pairs["method"] == pair_method]
    title = (f"Search space: {palette.method_label(group_method)} over n models vs "
             f"{palette.method_label(pair_method)} on pairs")
    found = [(s, s.rows(groups)) for axis in ("width", "depth") for s in selection.studies(groups, options, axis)]
    found = [(s, sub) for s, sub in found if not sub.empty]
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
                _draw_searches(ax, study, panel.assign(y=panel[column]), theirs, (group_method, pair_method), n)
                ax.set_ylabel(ylabel)
        fig.suptitle(f"{title}\n(n = {n} models per group, mean over pairs of each group; pairs: mean over "
                     f"disjoint pairs, {panels.BAND})")
        panels.figure_legend(fig, panels.flat(grid), "kind")
        style.save_figure(fig, Path(out))


def _draw_searches(ax: Axes, study: selection.Study, groups: pd.DataFrame, pairs: pd.DataFrame,
                   methods: tuple[str, str], n: str) -> None:
    axis = study.axis
    group_label, pair_label = (palette.method_label(m) for m in methods)
    for kind in selection.KINDS:
        color, name = palette.kind_color(kind), palette.kind_label(kind)
        mine = groups[groups["kind"] == kind]
        before, after = mine[mine["stage"] == "before"], mine[mine["stage"] == "after"]
        if not before.empty:
            panels.mean_line(ax, selection.mean_sd(before, axis), axis, color=color, label=f"{name}, before search",
                             linestyle=":", marker=None, alpha=0.5, band=False)
        if not after.empty:
            panels.mean_line(ax, selection.mean_sd(after, axis), axis, color=color,
                             label=f"{name}, {group_label}, n = {n}", marker="o", band=False)
        theirs = pairs[pairs["kind"] == kind]
        if not theirs.empty:
            panels.mean_line(ax, selection.mean_sd(theirs, axis), axis, color=color,
                             label=f"{name}, {pair_label}, n = 2", linestyle="--", marker="s")
    panels.format_study_axis(ax, axis, study.arch, [*groups[axis], *pairs[axis]])
