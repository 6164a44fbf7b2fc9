"""Barrier under label noise (paper App. E.1, Fig. 16): datasets whose training labels were partly randomised
(``fashion_mnist-noise20``: 20%) against their clean base.

Left: final train and test loss of the trained networks; middle: their error; right: the barrier of real
pairs before search and after each method, against the noise level. Options: ``split``/``metric``/``value``
for the barrier panel, ``bn_mode``, ``methods``, ``arch`` and other label filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.plotting import palette, panels, selection, style

__all__ = ["label_noise"]


def _noise_level(frame: pd.DataFrame) -> pd.DataFrame:
    """Split ``dataset`` into its base dataset and ``noise`` (percent of random labels, 0 for the clean one)."""
    parts = frame["dataset"].str.extract(r"^(?P<base>[^-]+)(?:-noise(?P<noise>\d+))?$")
    return frame.assign(base=parts["base"], noise=pd.to_numeric(parts["noise"]).fillna(0.0))


def _studied(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the (base, arch, depth, width) networks trained on at least one noisy variant."""
    noisy = frame.loc[frame["noise"] > 0, ["base", "arch", "depth", "width"]].drop_duplicates()
    return frame.merge(noisy, on=["base", "arch", "depth", "width"])


def label_noise(tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    title = "Label noise (paper Fig. 16)"
    models = selection.read_table(tables, "models", selection.MODEL_READ)
    models = _studied(_noise_level(models[models["kind"] == "real"]))
    barriers, ylabel = selection.barrier_rows(tables, options)
    barriers = _studied(_noise_level(barriers[barriers["kind"] == "real"]))
    if models.empty:
        style.no_data_figure(Path(out), "noisy-label datasets (dataset names ending in -noise<percent>)", title)
        return
    networks = models.groupby(["base", "arch", "depth", "width"])
    methods = selection.method_option(options)
    with style.figure_context():
        fig, grid = style.make_grid(len(networks), 3)
        for row, ((base, arch, depth, width), part) in zip(grid, networks, strict=True):
            network = palette.network_title(base, arch, depth, width)
            for ax, quantity in zip(row[:2], ("loss", "error"), strict=True):
                for split, color in (("train", palette.kind_color("real")), ("test", palette.kind_color("model"))):
                    stats = selection.mean_sd(part, "noise", f"{split}_{quantity}")
                    panels.mean_line(ax, stats, "noise", color=color, label=f"{split} set")
                ax.set_ylabel(f"final {quantity}")
            sub = barriers[(barriers["base"] == base) & (barriers["arch"] == arch) & (barriers["depth"] == depth)
                           & (barriers["width"] == width)]
            noisy_methods = set(sub.loc[sub["noise"] > 0, "method"])  # methods run at every noise level
            sub = sub[sub["method"].isin(noisy_methods)]
            keys = selection.series_keys(sub, methods)
            colors = palette.series_colors(keys)
            for i, key in enumerate(keys):
                line = sub[(sub["method"] == key[0]) & (sub["sa_schedule"] == key[1])]
                panels.mean_line(row[2], selection.mean_sd(line, "noise"), "noise", color=colors[key],
                                 label=palette.method_label(*key), marker=palette.method_marker(key[0], i))
            row[2].set_ylabel(ylabel)
            for ax in row:
                ax.set_xlabel("random training labels (%)")
                ax.set_title(network, fontsize=8)
        fig.suptitle(f"{title}\n(real world S; mean over seeds/pairs; {panels.BAND})")
        panels.axes_legend(fig, panels.flat(grid))
        style.save_figure(fig, Path(out))
