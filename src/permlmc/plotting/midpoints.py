"""Accuracy at the midpoint of the path, stage by stage: the REPAIR comparison (Jordan et al. 2023, Fig. 1 and
Table 1) for conv nets with and without BatchNorm.

For each network and pair, from the stored curves at alpha = 0, 1/2, 1 of one split (option ``split``, default
``test``; metric ``error``): the mean accuracy of the two endpoints, and the accuracy of the midpoint network
``(theta_A + pi(theta_B)) / 2`` after each stage:

* ``naive``: no permutation (method ``none``), running statistics interpolated (the paper's path);
* ``weight matching``: ``pi`` from weight matching, statistics interpolated; ``weights only``: weight matching
  without BatchNorm running statistics in its similarity (method ``weight_matching-statistics0``, Git Re-Basin's);
* ``+ reset``: the same ``pi`` with the midpoint's BatchNorm statistics re-estimated (bn mode ``reset``);
* ``+ REPAIR``: with each channel rescaled to the interpolated endpoint statistics (bn mode ``repair``).

Networks without BatchNorm (LayerNorm, none) have no reset or REPAIR stage; their bars are absent, not zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["STAGES", "midpoint_accuracies", "midpoint_accuracy"]

STAGES: dict[str, tuple[str, str, float]] = {
    "endpoints": ("none", "interpolate", -1.0),
    "naive": ("none", "interpolate", 0.5),
    "weight matching": ("weight_matching", "interpolate", 0.5),
    "weights only": ("weight_matching-statistics0", "interpolate", 0.5),
    "+ reset": ("weight_matching", "reset", 0.5),
    "+ REPAIR": ("weight_matching", "repair", 0.5),
}
"""Stage -> (method, bn mode, alpha) of the curve point it reads; alpha -1 is the mean of both endpoints."""


def _stage_colors() -> dict[str, Any]:
    """Greys for the references, weight matching's colour and a lighter one for its weights-only variant, and the
    BatchNorm modes' colours (as in ``bn_modes``) for the repairs."""
    blue = palette.series_colors([("weight_matching", "")])[("weight_matching", "")]
    light = tuple(0.55 + 0.45 * c for c in blue)
    return {"endpoints": "0.25", "naive": "0.65", "weight matching": blue, "weights only": light,
            "+ reset": palette.bn_mode_color("reset"), "+ REPAIR": palette.bn_mode_color("repair")}


def _points(curves: pd.DataFrame, method: str, bn_mode: str, alpha: float) -> pd.DataFrame:
    """Accuracy per (network, kind, pair) of one stage: 1 - error at ``alpha`` (the endpoints' mean for -1)."""
    rows = curves[(curves["method"] == method) & (curves["bn_mode"] == bn_mode)]
    if alpha < 0:
        rows = rows[np.isclose(rows["alpha"], 0.0) | np.isclose(rows["alpha"], 1.0)]
    else:
        rows = rows[np.isclose(rows["alpha"], alpha)]
    return (1.0 - rows.groupby([*selection.CONFIG, "kind", "pair"])["value"].mean()).rename("accuracy").reset_index()


def midpoint_accuracies(tables: Mapping[str, pd.DataFrame], split: str = "test") -> pd.DataFrame:
    """Tidy table: one row per (dataset, arch, depth, width, kind, stage) with the ``accuracy`` mean, its s.d.
    over pairs and their ``count``; stages in :data:`STAGES` order, those without curves left out."""
    curves = selection.read_table(tables, "curves", selection.CURVE_READ)
    curves = curves[(curves["split"] == split) & (curves["metric"] == "error")]
    parts = [_points(curves, *where).assign(stage=stage) for stage, where in STAGES.items()]
    points = pd.concat([p for p in parts if not p.empty] or [pd.DataFrame(columns=["stage", "accuracy"])])
    if points.empty:
        return pd.DataFrame(columns=[*selection.CONFIG, "kind", "stage", "mean", "std", "count"])
    stats = selection.mean_sd(points, [*selection.CONFIG, "kind", "stage"], y="accuracy")
    stats["order"] = stats["stage"].map(list(STAGES).index)
    return stats.sort_values([*selection.CONFIG, "kind", "order"]).drop(columns="order").reset_index(drop=True)


def midpoint_accuracy(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """The module's comparison: one panel per kind (real world S, our model S'), one group of bars per network,
    one bar per stage, each labelled with its accuracy in percent. Reads ``split`` (default ``test``) and the
    ``dataset``/``arch`` filters."""
    out = Path(out)
    split = selection.choice(options, "split", "test", selection.SPLITS)
    stats = selection.filter_labels(midpoint_accuracies(tables, split), options, ["dataset", "arch"])
    title = f"Accuracy at the midpoint of the path ({split} set), naive and after each stage"
    if stats.empty:
        style.no_data_figure(out, "curves of methods none and weight_matching (metric error)", title)
        return
    networks = list(stats[selection.CONFIG].drop_duplicates().itertuples(index=False, name=None))
    stages = [s for s in STAGES if s in set(stats["stage"])]
    colors = _stage_colors()
    bar = 0.84 / len(stages)
    with style.figure_context():
        fig, grid = style.make_grid(len(selection.KINDS), 1, panel=(max(5.0, 1.3 * len(networks) * len(stages) / 3),
                                                                    2.9))
        for ax, kind in zip((row[0] for row in grid), selection.KINDS, strict=True):
            part = stats[stats["kind"] == kind]
            for i, network in enumerate(networks):
                here = part[(part[selection.CONFIG] == pd.Series(network, index=selection.CONFIG)).all(axis=1)]
                for j, stage in enumerate(stages):
                    hit = here[here["stage"] == stage]
                    if hit.empty:
                        continue
                    x, y = i + (j - (len(stages) - 1) / 2) * bar, float(hit["mean"].iloc[0])
                    ax.bar(x, y, width=bar, yerr=float(hit["std"].iloc[0]), color=colors[stage], capsize=1.5,
                           label=stage, error_kw={"linewidth": 0.6})
                    ax.text(x, y + 0.01, f"{100 * y:.0f}", ha="center", va="bottom", fontsize=5.5)
            labels = [f"{palette.network_label(a, int(d), int(w))}\n{palette.dataset_label(ds)}"
                      for ds, a, d, w in networks]
            ax.set_xticks(range(len(networks)), labels, fontsize=7)
            ax.set(ylim=(0, 1.08), ylabel=f"{split} accuracy", title=palette.kind_label(kind))
            ax.grid(False, axis="x")
        fig.suptitle(f"{title}\n(bars: mean over pairs, whiskers \u00b11 s.d.; endpoints: mean of the two networks; "
                     "reset and REPAIR only where there is BatchNorm)")
        panels.axes_legend(fig, panels.flat(grid), "stage")
        style.save_figure(fig, out)
