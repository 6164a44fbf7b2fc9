"""Barrier vs width and vs depth: the paper's Figs. 2 and 3 (real world before permutation) and Figs. 5
and 7 (real world S against our model S', before and after the permutation search).

Options (see :mod:`permlmc.plotting.selection`): ``split``, ``metric``, ``value``, ``bn_mode``, ``depth``
(each arch's width study), ``width`` (each arch's depth study), ``dataset``/``arch``/``residual`` filters;
Fig. 7 also reads ``methods``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes

from permlmc.plotting import notes, palette, panels, selection, style

__all__ = ["barrier_vs_depth", "barrier_vs_width", "real_vs_model_after", "real_vs_model_before"]


def _subtitle(tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any], note: str = "") -> str:
    parts = [note, "mean over pairs", panels.BAND, selection.bn_mode_note(tables, options)]
    stopping = notes.stopping_note(tables)
    return "(" + "; ".join(p for p in parts if p) + ")" + (f"\n{stopping}" if stopping else "")


def _barrier_study(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any], axis: str) -> None:
    """Figs. 2 / 3: one panel per arch, its study along ``axis``; colour = dataset."""
    rows, ylabel = selection.barrier_rows(tables, options)
    rows = rows[(rows["kind"] == "real") & (rows["method"] == "none")]
    found, datasets = selection.studies_and_datasets(rows, options, axis)
    title = f"{ylabel} vs {axis}: real world S, before permutation"
    if not found:
        style.no_data_figure(out, f"{ylabel} vs {axis} (kind real, method none)", title)
        return
    with style.figure_context():
        fig, grid = style.make_grid(1, len(found))
        for ax, (study, sub) in zip(grid[0], found, strict=True):
            for i, dataset, part in selection.rows_by_dataset(sub, datasets):
                panels.mean_line(ax, selection.mean_sd(part, axis), axis, color=palette.dataset_color(dataset, i),
                                 label=palette.dataset_label(dataset))
            panels.format_study_axis(ax, axis, study.arch, sub[axis])
            ax.set_title(f"{palette.arch_label(study.arch)} \u00b7 {study.caption}")
            ax.set_ylabel(ylabel)
        fig.suptitle(f"{title}\n{_subtitle(tables, options)}")
        panels.axes_legend(fig, panels.flat(grid), "dataset")
        style.save_figure(fig, out)


def barrier_vs_width(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 2: barrier vs width (log2) of the real world before permutation, one panel per arch."""
    _barrier_study(tables, Path(out), options, "width")


def barrier_vs_depth(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 3: barrier vs depth at a fixed width of the real world before permutation, one panel per arch
    (VGG/ResNet depths are the n of VGG-n/ResNet-n, ticked at the depths present)."""
    _barrier_study(tables, Path(out), options, "depth")


def _panel_rows(
    rows: pd.DataFrame, options: Mapping[str, Any], keys: list[tuple[str, str]]
) -> list[tuple[tuple[str, str], selection.Study, pd.DataFrame]]:
    """(series key, study, rows) per (method [+ SA schedule], arch, study axis) that has rows."""
    found = [*selection.studies(rows, options, "width"), *selection.studies(rows, options, "depth")]
    ordered = sorted(found, key=lambda s: (s.arch, s.axis != "width"))
    result = []
    for key in keys:
        keyed = rows[(rows["method"] == key[0]) & (rows["sa_schedule"] == key[1])]
        for study in ordered:
            sub = study.rows(keyed)
            if not sub.empty:
                result.append((key, study, sub))
    return result


def _real_vs_model(
    tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any], *, after: bool
) -> None:
    rows, ylabel = selection.barrier_rows(tables, options)
    rows = rows[rows["kind"].isin(selection.KINDS)]
    phase = "AFTER permutation search" if after else "BEFORE permutation"
    title = f"{ylabel}, real world S vs our model S\u2032, {phase}"
    if after:
        methods = selection.method_option(options)
        searched = rows[rows["method"] != "none"]
        if methods is not None:
            searched = searched[searched["method"].isin(methods)]
        keys = selection.series_keys(searched, methods)
    else:
        keys = [("none", "")]
    reference = rows[rows["method"] == "none"]
    panel_rows = _panel_rows(rows, options, keys)
    if not panel_rows:
        what = "methods other than none" if after else "method none"
        style.no_data_figure(out, f"{ylabel} of kinds real and model, {what}", title)
        return

    datasets = sorted({d for *_, sub in panel_rows for d in sub["dataset"].unique()})
    with style.figure_context():
        fig, grid = style.make_grid(len(panel_rows), len(datasets))
        for row_axes, (key, study, sub) in zip(grid, panel_rows, strict=True):
            for ax, dataset in zip(row_axes, datasets, strict=True):
                arch = palette.arch_label(study.arch)
                heading = f"{palette.dataset_label(dataset)} \u00b7 {arch} \u00b7 {study.caption}"
                ax.set_title(f"{palette.method_label(*key)}\n{heading}" if after else heading)
                panel = sub[sub["dataset"] == dataset]
                if panel.empty:
                    panels.empty_panel(ax, f"{dataset} {study.arch}")
                    continue
                before = study.rows(reference[reference["dataset"] == dataset]) if after else None
                _draw_kinds(ax, study, panel, before)
                ax.set_ylabel(ylabel)
        note = "faint dotted: before search" if after else ""
        fig.suptitle(f"{title}\n{_subtitle(tables, options, note)}")
        panels.axes_legend(fig, panels.flat(grid), "kind")
        style.save_figure(fig, out)


def _draw_kinds(ax: Axes, study: selection.Study, panel: pd.DataFrame, before: pd.DataFrame | None) -> None:
    """One line per kind of ``panel``; with ``before`` (Fig. 7), the before-search line per kind, faint."""
    axis = study.axis
    xs: list[float] = list(panel[axis])
    for kind in selection.KINDS:
        color = palette.kind_color(kind)
        if before is not None:
            ref = before[before["kind"] == kind]
            if not ref.empty:
                xs += list(ref[axis])
                panels.mean_line(
                    ax, selection.mean_sd(ref, axis), axis, color=color,
                    label=f"{palette.kind_label(kind)}, before search", linestyle=":", marker=None, alpha=0.4,
                    band=False, linewidth=1.2,
                )  # fmt: skip
        part = panel[panel["kind"] == kind]
        if not part.empty:
            panels.mean_line(
                ax, selection.mean_sd(part, axis), axis, color=color, label=palette.kind_label(kind),
                linestyle=palette.kind_linestyle(kind), marker="o" if kind == "real" else "s",
            )  # fmt: skip
    panels.format_study_axis(ax, axis, study.arch, xs)


def real_vs_model_before(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 5: barrier of S (kind real) vs S' (kind model) before permutation, vs width and depth.

    Panel rows: (arch, study); columns: dataset.
    """
    _real_vs_model(tables, Path(out), options, after=False)


def real_vs_model_after(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 7: as Fig. 5 after each permutation search, the before-search line drawn faintly.

    Panel rows: (method [+ SA schedule], arch, study); columns: dataset. Option ``methods`` (default:
    every method present except ``none``).
    """
    _real_vs_model(tables, Path(out), options, after=True)
