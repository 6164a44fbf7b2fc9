"""One function per paper figure, drawn from tidy tables; none of them loads a checkpoint.

Every function has the signature ``(tables, out, options) -> None``: ``tables`` maps a table name
(``barriers``, ``curves``, ``models``, ``sa_traces``) to a DataFrame, ``out`` is the image path (its suffix
picks the format) and ``options`` holds the figure's settings. When the rows a figure needs are absent
it still writes an image, one that says ``no data for <what>``, because the workflow asks for every figure.

Barrier-type figures take ``options["split"]`` (``train``/``test``, default ``train``),
``options["metric"]`` (``loss``/``error``, default ``loss``), ``options["value"]`` (``barrier`` = Eq. 1,
or ``barrier_mid`` = the alpha = 1/2 variant; default ``barrier``) and an optional ``options["bn_mode"]``.
Error bands are +/- one standard deviation over pairs (over seeds for ``training_summary``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lmc.plotting import style  # noqa: E402

__all__ = [
    "FIGURES",
    "FigureFunction",
    "barrier_vs_depth",
    "barrier_vs_width",
    "interpolation_curves",
    "real_vs_model_after",
    "real_vs_model_before",
    "real_vs_model_scatter",
    "sa_energy",
    "training_summary",
]

FigureFunction = Callable[[Mapping[str, pd.DataFrame], Path, Mapping[str, Any]], None]

BARRIER_COLUMNS = [
    "dataset", "arch", "depth", "width", "kind", "pair", "method", "sa_schedule", "bn_mode",
    "split", "metric", "barrier", "barrier_mid", "search_seconds",
]  # fmt: skip
CURVE_COLUMNS = [
    "dataset", "arch", "depth", "width", "kind", "pair", "method", "split", "metric", "alpha", "value",
]  # fmt: skip
MODEL_COLUMNS = [
    "dataset", "arch", "depth", "width", "seed", "epochs",
    "train_loss", "train_error", "test_loss", "test_error", "path",
]  # fmt: skip
SA_TRACE_COLUMNS = [
    "dataset", "arch", "depth", "width", "kind", "pair", "sa_schedule",
    "step", "temperature", "energy", "best_energy",
]  # fmt: skip

_NUMERIC = {
    "depth", "width", "seed", "epochs", "barrier", "barrier_mid", "search_seconds", "alpha", "value",
    "train_loss", "train_error", "test_loss", "test_error", "step", "temperature", "energy", "best_energy",
}  # fmt: skip
_TEXT = {"dataset", "arch", "kind", "pair", "method", "sa_schedule", "bn_mode", "split", "metric", "path"}

_SPLITS = ("train", "test")
_METRICS = ("loss", "error")
_VALUES = ("barrier", "barrier_mid")
_KINDS = ("real", "model")

BAND = "band: \u00b11 s.d. over pairs"


# ----------------------------------------------------------------------------------------------------
# tables and options
# ----------------------------------------------------------------------------------------------------


def _table(tables: Mapping[str, pd.DataFrame], name: str, columns: Sequence[str]) -> pd.DataFrame:
    """The table ``name`` with typed columns; an absent or empty table becomes an empty frame.

    A non-empty table that lacks a required column is a schema error and raises ``ValueError``.
    """
    frame = tables.get(name)
    if frame is None or frame.empty:
        frame = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"table {name!r} lacks columns {missing}; it has {list(frame.columns)}")
    frame = frame.copy()
    for column in columns:
        if column in _NUMERIC:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        elif column in _TEXT:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


def _choice(options: Mapping[str, Any], key: str, default: str, allowed: Sequence[str]) -> str:
    value = str(options.get(key, default))
    if value not in allowed:
        raise ValueError(f"option {key}={value!r} is not one of {list(allowed)}")
    return value


def _int_option(options: Mapping[str, Any], key: str) -> int | None:
    value = options.get(key)
    return None if value is None else int(value)


def _text_filter(frame: pd.DataFrame, options: Mapping[str, Any], keys: Iterable[str]) -> pd.DataFrame:
    """Keep rows matching optional string options (``dataset``, ``arch``, ``bn_mode``, ...)."""
    for key in keys:
        wanted = options.get(key)
        if wanted is None:
            continue
        allowed = [str(v) for v in wanted] if isinstance(wanted, list | tuple) else [str(wanted)]
        frame = frame[frame[key].isin(allowed)]
    return frame


def _barrier_rows(tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> tuple[pd.DataFrame, str]:
    """Barrier rows for the chosen split/metric with the chosen value copied into column ``y``."""
    split = _choice(options, "split", "train", _SPLITS)
    metric = _choice(options, "metric", "loss", _METRICS)
    value = _choice(options, "value", "barrier", _VALUES)
    frame = _table(tables, "barriers", BARRIER_COLUMNS)
    frame = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    frame = _text_filter(frame, options, ["dataset", "arch", "bn_mode"])
    frame = frame.assign(y=frame[value]).dropna(subset=["y", "depth", "width"])
    return frame, style.metric_label(split, metric, value)


def _depth_study_width(frame: pd.DataFrame) -> int | None:
    """The width shared by the most depths (ties: the largest); the depth study's width by default."""
    if frame.empty:
        return None
    counts = frame.groupby("width")["depth"].nunique()
    best = counts[counts == counts.max()].index.max()
    return int(best)


def _study(frame: pd.DataFrame, study: str, depth: int, width: int | None) -> pd.DataFrame:
    """Rows of the width study (fixed depth) or the depth study (fixed width)."""
    if study == "width":
        return frame[frame["depth"] == depth]
    if width is None:
        return frame.iloc[0:0]
    return frame[frame["width"] == width]


def _study_caption(study: str, depth: int, width: int | None) -> str:
    return f"vs width (depth {depth})" if study == "width" else f"vs depth (width {width})"


def _series_keys(frame: pd.DataFrame, methods: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """Distinct (method, sa_schedule) pairs, ``none`` first, then in the order of ``methods`` or sorted."""
    keys = sorted({(str(m), str(s)) for m, s in zip(frame["method"], frame["sa_schedule"], strict=True)})
    order = {m: i for i, m in enumerate(methods)} if methods is not None else {}
    return sorted(keys, key=lambda k: (k[0] != "none", order.get(k[0], len(order)), k))


def _stats(frame: pd.DataFrame, x: str, y: str = "y") -> pd.DataFrame:
    """Mean, standard deviation and count of ``y`` per ``x`` (sorted by ``x``)."""
    grouped = frame.groupby(x)[y].agg(["mean", "std", "count"]).reset_index().sort_values(x)
    grouped["std"] = grouped["std"].fillna(0.0)
    return grouped


# ----------------------------------------------------------------------------------------------------
# drawing helpers
# ----------------------------------------------------------------------------------------------------


def _line(
    ax: Axes,
    stats: pd.DataFrame,
    x: str,
    *,
    color: style.Color,
    label: str,
    linestyle: style.LineStyleType = "-",
    marker: str | None = "o",
    alpha: float = 1.0,
    band: bool = True,
    linewidth: float | None = None,
) -> None:
    xs = stats[x].to_numpy(dtype=float)
    mean = stats["mean"].to_numpy(dtype=float)
    ax.plot(
        xs, mean, color=color, linestyle=linestyle, marker=marker, alpha=alpha, label=label,
        linewidth=linewidth,
    )  # fmt: skip
    if band and len(xs) > 0:
        sd = stats["std"].to_numpy(dtype=float)
        ax.fill_between(xs, mean - sd, mean + sd, color=color, alpha=0.18 * alpha, linewidth=0)


def _format_x(ax: Axes, x: str, values: Iterable[float]) -> None:
    present = sorted({float(v) for v in values})
    if x == "width":
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width (hidden units per layer, log\u2082)")
        if present:
            ax.set_xticks(present)
            ax.set_xticklabels([_pow2_label(v) for v in present])
            ax.minorticks_off()
    elif x == "depth":
        ax.set_xlabel("depth (hidden layers)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xlabel(x)


def _pow2_label(value: float) -> str:
    exponent = np.log2(value) if value > 0 else np.nan
    if np.isfinite(exponent) and float(exponent).is_integer():
        return f"$2^{{{int(exponent)}}}$"
    return f"{value:g}"


def _empty_panel(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no data for {what}", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _figure_legend(fig: Figure, axes: Iterable[Axes], title: str | None = None) -> None:
    """One legend for the whole figure, outside the panels on the right, duplicates removed."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels and not label.startswith("_"):
                handles.append(handle)
                labels.append(label)
    style.figure_legend(fig, handles, labels, title)


def _flat(grid: list[list[Axes]]) -> list[Axes]:
    return [ax for row in grid for ax in row]


def _hide_unused(grid: list[list[Axes]], used: int) -> None:
    for ax in _flat(grid)[used:]:
        ax.set_visible(False)


# ----------------------------------------------------------------------------------------------------
# Figs. 2 and 3: barrier vs width / depth, real world before permutation
# ----------------------------------------------------------------------------------------------------


def _barrier_study(
    tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any], study: str
) -> None:
    rows, ylabel = _barrier_rows(tables, options)
    rows = rows[(rows["kind"] == "real") & (rows["method"] == "none")]
    depth = _int_option(options, "depth") or 1
    width = _int_option(options, "width")
    if study == "depth" and width is None:
        width = _depth_study_width(rows)
    rows = _study(rows, study, depth, width)
    caption = _study_caption(study, depth, width)
    title = f"{ylabel} {caption}: real world S, before permutation"
    if rows.empty:
        style.no_data_figure(out, f"{ylabel} {caption} (kind real, method none)", title)
        return
    x = study
    archs = sorted(rows["arch"].unique())
    datasets = sorted(rows["dataset"].unique())
    with style.figure_context():
        fig, grid = style.make_grid(1, len(archs))
        for ax, arch in zip(grid[0], archs, strict=True):
            panel = rows[rows["arch"] == arch]
            for i, dataset in enumerate(datasets):
                sub = panel[panel["dataset"] == dataset]
                if sub.empty:
                    continue
                color = style.dataset_color(dataset, i)
                _line(ax, _stats(sub, x), x, color=color, label=style.dataset_label(dataset))
            _format_x(ax, x, panel[x])
            ax.set_title(arch)
            ax.set_ylabel(ylabel)
        fig.suptitle(f"{title}\n(mean over pairs, {BAND})")
        _figure_legend(fig, _flat(grid), "dataset")
        style.save_figure(fig, out)


def barrier_vs_width(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 2: barrier vs width (log2) for the real world before permutation, one panel per arch.

    Options: ``depth`` (width study's depth, default 1), ``split``, ``metric``, ``value``, optional
    ``dataset``/``arch``/``bn_mode`` filters.
    """
    _barrier_study(tables, Path(out), options, "width")


def barrier_vs_depth(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 3: barrier vs depth at a fixed width for the real world before permutation.

    Options: ``width`` (default: the width present at the most depths), ``split``, ``metric``, ``value``,
    optional ``dataset``/``arch``/``bn_mode`` filters.
    """
    _barrier_study(tables, Path(out), options, "depth")


# ----------------------------------------------------------------------------------------------------
# Figs. 5 and 7: real world (S) vs our model (S') before and after the permutation search
# ----------------------------------------------------------------------------------------------------


def _real_vs_model(
    tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any], *, after: bool
) -> None:
    rows, ylabel = _barrier_rows(tables, options)
    rows = rows[rows["kind"].isin(_KINDS)]
    depth = _int_option(options, "depth") or 1
    width = _int_option(options, "width")
    if width is None:
        width = _depth_study_width(rows[rows["method"] == "none"]) or _depth_study_width(rows)
    phase = "AFTER permutation search" if after else "BEFORE permutation"
    title = f"{ylabel}, real world S vs our model S\u2032, {phase}"

    if after:
        requested = options.get("methods")
        methods = [str(m) for m in requested] if requested is not None else None
        searched = rows[rows["method"] != "none"]
        if methods is not None:
            searched = searched[searched["method"].isin(methods)]
        keys = _series_keys(searched, methods)
    else:
        keys = [("none", "")]
    reference = rows[rows["method"] == "none"]

    # one panel row per (method, arch, study) that has data, one column per dataset
    panel_rows: list[tuple[tuple[str, str], str, str, pd.DataFrame]] = []
    for key in keys:
        keyed = rows[(rows["method"] == key[0]) & (rows["sa_schedule"] == key[1])]
        for arch in sorted(keyed["arch"].unique()):
            for study in ("width", "depth"):
                sub = _study(keyed[keyed["arch"] == arch], study, depth, width)
                if not sub.empty:
                    panel_rows.append((key, arch, study, sub))
    if not panel_rows:
        what = "methods other than none" if after else "method none"
        style.no_data_figure(out, f"{ylabel} of kinds real and model, {what}", title)
        return

    datasets = sorted({d for *_, sub in panel_rows for d in sub["dataset"].unique()})
    with style.figure_context():
        fig, grid = style.make_grid(len(panel_rows), len(datasets))
        for row_axes, (key, arch, study, sub) in zip(grid, panel_rows, strict=True):
            caption = _study_caption(study, depth, width)
            for ax, dataset in zip(row_axes, datasets, strict=True):
                panel = sub[sub["dataset"] == dataset]
                heading = f"{style.dataset_label(dataset)} \u00b7 {arch} \u00b7 {caption}"
                if after:
                    heading = f"{style.method_label(*key)}\n{heading}"
                ax.set_title(heading)
                if panel.empty:
                    _empty_panel(ax, f"{dataset} {arch}")
                    continue
                xs: list[float] = list(panel[study])
                for kind in _KINDS:
                    if after:
                        ref = _study(reference, study, depth, width)
                        ref = ref[(ref["arch"] == arch) & (ref["dataset"] == dataset) & (ref["kind"] == kind)]
                        if not ref.empty:
                            xs += list(ref[study])
                            _line(
                                ax, _stats(ref, study), study, color=style.kind_color(kind),
                                label=f"{style.kind_label(kind)}, before search", linestyle=":",
                                marker=None, alpha=0.4, band=False, linewidth=1.2,
                            )  # fmt: skip
                    part = panel[panel["kind"] == kind]
                    if part.empty:
                        continue
                    _line(
                        ax, _stats(part, study), study, color=style.kind_color(kind),
                        label=style.kind_label(kind), linestyle=style.kind_linestyle(kind),
                        marker="o" if kind == "real" else "s",
                    )  # fmt: skip
                _format_x(ax, study, xs)
                ax.set_ylabel(ylabel)
        note = "faint dotted: before search; " if after else ""
        fig.suptitle(f"{title}\n({note}mean over pairs, {BAND})")
        _figure_legend(fig, _flat(grid), "kind")
        style.save_figure(fig, out)


def real_vs_model_before(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 5: barrier of S (kind real) vs S' (kind model) before permutation, vs width and depth.

    Panel rows: (arch, study); columns: dataset. Options: ``depth`` (width study, default 1), ``width``
    (depth study, default: the width present at the most depths), ``split``, ``metric``, ``value``,
    optional ``dataset``/``arch``/``bn_mode`` filters.
    """
    _real_vs_model(tables, Path(out), options, after=False)


def real_vs_model_after(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 7: as Fig. 5 after each permutation search, the before-search curve drawn faintly.

    Panel rows: (method [+ SA schedule], arch, study); columns: dataset. Options as for
    :func:`real_vs_model_before` plus ``methods`` (default: every method present except ``none``).
    """
    _real_vs_model(tables, Path(out), options, after=True)


# ----------------------------------------------------------------------------------------------------
# Fig. 1 (right): real world vs our model, one point per configuration and method
# ----------------------------------------------------------------------------------------------------


def real_vs_model_scatter(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 1 (right): mean barrier of S (x) vs S' (y) per (dataset, arch, depth, width, method).

    Options: ``split``, ``metric``, ``value``, ``methods`` (default all), optional
    ``dataset``/``arch``/``bn_mode`` filters.
    """
    out = Path(out)
    rows, ylabel = _barrier_rows(tables, options)
    requested = options.get("methods")
    methods = [str(m) for m in requested] if requested is not None else None
    if methods is not None:
        rows = rows[rows["method"].isin(methods)]
    title = f"{ylabel}: real world S vs our model S\u2032"
    index = ["dataset", "arch", "depth", "width", "method", "sa_schedule"]
    rows = rows[rows["kind"].isin(_KINDS)]
    means = rows.groupby([*index, "kind"])["y"].mean().unstack("kind") if not rows.empty else pd.DataFrame()
    if means.empty or not set(_KINDS) <= set(means.columns):
        style.no_data_figure(out, f"{ylabel} with both kinds real and model for one configuration", title)
        return
    points = means.dropna(subset=list(_KINDS)).reset_index()
    if points.empty:
        style.no_data_figure(out, f"{ylabel} with both kinds real and model for one configuration", title)
        return
    keys = _series_keys(points, methods)
    colors = style.series_colors(keys)
    with style.figure_context():
        fig, grid = style.make_grid(1, 1, panel=(4.2, 4.2))
        ax = grid[0][0]
        for i, key in enumerate(keys):
            sub = points[(points["method"] == key[0]) & (points["sa_schedule"] == key[1])]
            ax.scatter(
                sub["real"], sub["model"], color=colors[key], marker=style.method_marker(key[0], i),
                label=f"{style.method_label(*key)} (n={len(sub)})", alpha=0.8, edgecolors="white",
                linewidths=0.4,
            )  # fmt: skip
        values = np.concatenate([points["real"].to_numpy(dtype=float), points["model"].to_numpy(dtype=float)])
        low, high = min(0.0, float(values.min())), float(values.max())
        pad = 0.05 * (high - low) if high > low else 0.05
        lims = (low - pad, high + pad)
        ax.plot(lims, lims, color="0.4", linestyle="--", linewidth=1.0, label="y = x")
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(f"real world S: mean {ylabel}")
        ax.set_ylabel(f"our model S\u2032: mean {ylabel}")
        fig.suptitle(f"{title}\n(one point per dataset, arch, depth, width and method; mean over pairs)")
        _figure_legend(fig, [ax], "search method")
        style.save_figure(fig, out)


# ----------------------------------------------------------------------------------------------------
# interpolation curves (Eq. 1)
# ----------------------------------------------------------------------------------------------------


def _sa_schedules(tables: Mapping[str, pd.DataFrame], selection: pd.DataFrame) -> str:
    """SA schedule(s) recorded in the barrier table for the configurations in ``selection``."""
    barriers = _table(tables, "barriers", BARRIER_COLUMNS)
    sa = barriers[barriers["method"] == "sa"]
    if sa.empty:
        return ""
    configs = selection[["dataset", "arch", "depth", "width"]].drop_duplicates()
    matched = sa.merge(configs, on=["dataset", "arch", "depth", "width"])
    found = sorted({s for s in (matched if not matched.empty else sa)["sa_schedule"] if s})
    return " / ".join(found)


def interpolation_curves(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Loss/error along the linear path, one panel per (dataset, arch) x (split, metric).

    Hue = method, line style = kind, mean over pairs. A light straight line joins the endpoints of the
    ``none`` mean curve: the baseline Eq. 1 subtracts. Options: ``width`` (default: the median width
    present), ``depth`` (default: the smallest depth at that width), optional ``dataset``/``arch`` filters.
    """
    out = Path(out)
    rows = _table(tables, "curves", CURVE_COLUMNS)
    rows = _text_filter(rows, options, ["dataset", "arch"])
    rows = rows.dropna(subset=["alpha", "value", "depth", "width"])
    depth = _int_option(options, "depth")
    width = _int_option(options, "width")
    if depth is not None:
        rows = rows[rows["depth"] == depth]
    if width is None and not rows.empty:
        widths = sorted(rows["width"].unique())
        width = int(widths[(len(widths) - 1) // 2])
    if width is not None:
        rows = rows[rows["width"] == width]
    if depth is None and not rows.empty:
        depth = int(rows["depth"].min())
        rows = rows[rows["depth"] == depth]
    title = f"Loss and error along the linear path, width {width}, depth {depth}"
    if rows.empty:
        style.no_data_figure(out, f"interpolation curves at width {width}, depth {depth}", title)
        return

    schedule = _sa_schedules(tables, rows)
    methods = sorted(rows["method"].unique(), key=lambda m: (m != "none", m))
    keys = [(m, schedule if m == "sa" else "") for m in methods]
    colors = style.series_colors(keys)
    combos = sorted(set(zip(rows["dataset"], rows["arch"], strict=True)))
    present = set(zip(rows["split"], rows["metric"], strict=True))
    columns = [(s, m) for s in _SPLITS for m in _METRICS if (s, m) in present]
    with style.figure_context():
        fig, grid = style.make_grid(len(combos), len(columns))
        for row_axes, (dataset, arch) in zip(grid, combos, strict=True):
            for ax, (split, metric) in zip(row_axes, columns, strict=True):
                panel = rows[
                    (rows["dataset"] == dataset) & (rows["arch"] == arch)
                    & (rows["split"] == split) & (rows["metric"] == metric)
                ]  # fmt: skip
                ax.set_title(f"{style.dataset_label(dataset)} \u00b7 {arch} \u00b7 {split} {metric}")
                ax.set_xlabel("\u03b1 (0 = model A, 1 = permuted model B)")
                ax.set_ylabel(f"{split} {metric}")
                if panel.empty:
                    _empty_panel(ax, f"{split} {metric}")
                    continue
                for key in keys:
                    for kind in _KINDS:
                        part = panel[(panel["method"] == key[0]) & (panel["kind"] == kind)]
                        if part.empty:
                            continue
                        stats = _stats(part, "alpha", "value")
                        label = f"{style.method_label(*key)}, {style.kind_label(kind)}"
                        _line(
                            ax, stats, "alpha", color=colors[key], label=label,
                            linestyle=style.kind_linestyle(kind), marker=None, band=False,
                        )  # fmt: skip
                        if key[0] == "none" and len(stats) >= 2:
                            ends = stats.iloc[[0, -1]]
                            ax.plot(
                                ends["alpha"], ends["mean"], color="0.6", linewidth=0.9,
                                linestyle=style.kind_linestyle(kind), alpha=0.8,
                                label="straight line between endpoints (Eq. 1 baseline)",
                            )  # fmt: skip
        fig.suptitle(f"{title} (mean over pairs)")
        _figure_legend(fig, _flat(grid), "method, kind")
        style.save_figure(fig, out)


# ----------------------------------------------------------------------------------------------------
# simulated annealing traces
# ----------------------------------------------------------------------------------------------------


def sa_energy(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """SA energy (faint) and best energy (bold) vs step (log x), one line per (width, kind, pair).

    Panels per (sa_schedule, dataset, arch, depth); colour = width, line style = kind. Options: optional
    ``sa_schedule``/``dataset``/``arch`` filters.
    """
    out = Path(out)
    rows = _table(tables, "sa_traces", SA_TRACE_COLUMNS)
    rows = _text_filter(rows, options, ["sa_schedule", "dataset", "arch"])
    rows = rows.dropna(subset=["step", "width", "depth"])
    schedules = sorted(rows["sa_schedule"].unique())
    named = ", ".join(s or "unspecified" for s in schedules)
    title = "Simulated annealing: energy vs step" + (f" (SA schedule: {named})" if schedules else "")
    if rows.empty:
        style.no_data_figure(out, "simulated annealing traces", title)
        return
    rows = rows.astype({"depth": int, "width": int})
    panels = sorted(set(zip(rows["sa_schedule"], rows["dataset"], rows["arch"], rows["depth"], strict=True)))
    colors = style.width_colors(rows["width"].tolist())
    nrows, ncols = style.grid_shape(len(panels), 3)
    with style.figure_context():
        fig, grid = style.make_grid(nrows, ncols)
        for ax, (schedule, dataset, arch, depth) in zip(_flat(grid), panels, strict=False):
            panel = rows[
                (rows["sa_schedule"] == schedule) & (rows["dataset"] == dataset)
                & (rows["arch"] == arch) & (rows["depth"] == depth)
            ]  # fmt: skip
            for (width, kind, _pair), trace in panel.groupby(["width", "kind", "pair"], sort=True):
                trace = trace.sort_values("step")
                color = colors[int(width)]
                linestyle = style.kind_linestyle(str(kind))
                steps = trace["step"]
                ax.plot(steps, trace["energy"], color=color, linestyle=linestyle, linewidth=0.7, alpha=0.3)
                ax.plot(steps, trace["best_energy"], color=color, linestyle=linestyle, linewidth=1.5)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlabel("SA step (log)")
            ax.set_ylabel("energy (SA objective)")
            ax.set_title(
                f"{style.dataset_label(dataset)} \u00b7 {arch} \u00b7 depth {depth}\n"
                f"SA schedule: {schedule or 'unspecified'}"
            )
        _hide_unused(grid, len(panels))
        handles: list[Line2D] = [Line2D([], [], color=colors[w], label=f"width {w}") for w in sorted(colors)]
        for kind in sorted(rows["kind"].unique()):
            linestyle = style.kind_linestyle(kind)
            handles.append(Line2D([], [], color="0.2", linestyle=linestyle, label=style.kind_label(kind)))
        handles.append(Line2D([], [], color="0.2", linewidth=0.7, alpha=0.3, label="current energy"))
        handles.append(Line2D([], [], color="0.2", linewidth=1.5, label="best energy so far"))
        style.figure_legend(fig, handles, [str(h.get_label()) for h in handles])
        fig.suptitle(f"{title}\n(one line per width, kind and pair)")
        style.save_figure(fig, out)


# ----------------------------------------------------------------------------------------------------
# Fig. 8 analogue: training summary
# ----------------------------------------------------------------------------------------------------


def training_summary(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Paper Fig. 8 analogue: train (solid) and test (dotted) error and loss vs width of trained networks.

    Panel rows: arch; columns: error, loss; colour = dataset; mean over seeds with a +/-1 s.d. band.
    Options: ``depth`` (default 1), optional ``dataset``/``arch`` filters.
    """
    out = Path(out)
    rows = _table(tables, "models", MODEL_COLUMNS)
    rows = _text_filter(rows, options, ["dataset", "arch"]).dropna(subset=["depth", "width"])
    depth = _int_option(options, "depth") or 1
    rows = rows[rows["depth"] == depth]
    title = f"Trained networks: error and loss vs width, depth {depth}"
    if rows.empty:
        style.no_data_figure(out, f"trained networks of depth {depth}", title)
        return
    archs = sorted(rows["arch"].unique())
    datasets = sorted(rows["dataset"].unique())
    with style.figure_context():
        fig, grid = style.make_grid(len(archs), 2)
        for row_axes, arch in zip(grid, archs, strict=True):
            panel = rows[rows["arch"] == arch]
            for ax, quantity in zip(row_axes, ("error", "loss"), strict=True):
                for i, dataset in enumerate(datasets):
                    sub = panel[panel["dataset"] == dataset]
                    if sub.empty:
                        continue
                    for split in ("train", "test"):
                        column = f"{split}_{quantity}"
                        _line(
                            ax, _stats(sub.dropna(subset=[column]), "width", column), "width",
                            color=style.dataset_color(dataset, i), linestyle="-" if split == "train" else ":",
                            label=f"{style.dataset_label(dataset)}, {split}",
                        )  # fmt: skip
                _format_x(ax, "width", panel["width"])
                ax.set_ylabel(quantity)
                ax.set_title(f"{arch} \u00b7 {quantity}")
        fig.suptitle(f"{title}\n(solid: train, dotted: test; mean over seeds, band: \u00b11 s.d.)")
        _figure_legend(fig, _flat(grid), "dataset, split")
        style.save_figure(fig, out)


FIGURES: dict[str, FigureFunction] = {
    "barrier_vs_width": barrier_vs_width,
    "barrier_vs_depth": barrier_vs_depth,
    "real_vs_model_before": real_vs_model_before,
    "real_vs_model_after": real_vs_model_after,
    "real_vs_model_scatter": real_vs_model_scatter,
    "interpolation_curves": interpolation_curves,
    "sa_energy": sa_energy,
    "training_summary": training_summary,
}
