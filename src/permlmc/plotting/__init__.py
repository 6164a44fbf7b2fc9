"""Figures of the paper drawn from tidy result tables (never from checkpoints).

``FIGURES`` maps each figure's name to a function ``(tables, out, options) -> None``: ``tables`` maps a
table name (``barriers``, ``curves``, ``models``, ``sa_traces``) to a DataFrame, ``out`` is the image path
(its suffix picks the format) and ``options`` holds the figure's settings (see
:mod:`permlmc.plotting.selection`). When the rows a figure needs are absent it still writes an image saying
``no data for <what>`` (the workflow schedules a figure only where its config gives it data).

Modules: :mod:`~permlmc.plotting.barrier_studies` (Figs. 2, 3, 5, 7), :mod:`~permlmc.plotting.barrier_comparisons`
(Figs. 1 right, 4c, 10, BatchNorm modes), :mod:`~permlmc.plotting.task_grid` (Figs. 4a, 4b),
:mod:`~permlmc.plotting.curves` (interpolation curves, SA traces), :mod:`~permlmc.plotting.training` (trained
networks, Figs. 8, 9), :mod:`~permlmc.plotting.temperature_scaling` (the temperature-scaled barrier),
:mod:`~permlmc.plotting.midpoints` (midpoint accuracy, stage by stage), :mod:`~permlmc.plotting.groups`
(group searches, Figs. 6, 11, 12), :mod:`~permlmc.plotting.streams` (residual streams searched or left in
place), :mod:`~permlmc.plotting.study_figures` (all pairs, Fig. 18; Theorem 3.1;
ensembles), :mod:`~permlmc.plotting.paper_tables` (Tables 2, 3); rows are selected in
:mod:`~permlmc.plotting.selection`, drawn with :mod:`~permlmc.plotting.panels`, in the look of
:mod:`~permlmc.plotting.style` and :mod:`~permlmc.plotting.palette`.
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before any submodule imports pyplot: figures are files, never windows

import pandas as pd  # noqa: E402

from permlmc.plotting.along_training import barrier_vs_epoch, barrier_vs_spawn  # noqa: E402
from permlmc.plotting.barrier_comparisons import bn_modes, error_vs_barrier, real_vs_model_scatter  # noqa: E402
from permlmc.plotting.barrier_studies import (  # noqa: E402
    barrier_vs_depth,
    barrier_vs_width,
    real_vs_model_after,
    real_vs_model_before,
)
from permlmc.plotting.curves import interpolation_curves, sa_energy  # noqa: E402
from permlmc.plotting.groups import group_searches, group_vs_pairs  # noqa: E402
from permlmc.plotting.label_noise import label_noise  # noqa: E402
from permlmc.plotting.layerwise import layerwise_barriers  # noqa: E402
from permlmc.plotting.merging import merge_many  # noqa: E402
from permlmc.plotting.midpoints import midpoint_accuracy  # noqa: E402
from permlmc.plotting.notes import training_note  # noqa: E402
from permlmc.plotting.search_studies import (  # noqa: E402
    barrier_vs_compute,
    method_comparison,
    planted_recovery,
    sa_scaling,
)
from permlmc.plotting.streams import stream_comparison  # noqa: E402
from permlmc.plotting.study_figures import all_pairs, ensembles, theorem_rate  # noqa: E402
from permlmc.plotting.style import figure_warning  # noqa: E402
from permlmc.plotting.task_grid import task_grid  # noqa: E402
from permlmc.plotting.temperature_scaling import temperature_scaled_barriers  # noqa: E402
from permlmc.plotting.training import training_summary, training_vs_depth  # noqa: E402

__all__ = ["FIGURES", "FigureFunction", "draw"]

FigureFunction = Callable[[Mapping[str, pd.DataFrame], Path, Mapping[str, Any]], None]

FIGURES: dict[str, FigureFunction] = {
    "barrier_vs_width": barrier_vs_width,
    "barrier_vs_depth": barrier_vs_depth,
    "real_vs_model_before": real_vs_model_before,
    "real_vs_model_after": real_vs_model_after,
    "real_vs_model_scatter": real_vs_model_scatter,
    "error_vs_barrier": error_vs_barrier,
    "task_grid": task_grid,
    "bn_modes": bn_modes,
    "midpoint_accuracy": midpoint_accuracy,
    "temperature_scaled_barriers": temperature_scaled_barriers,
    "interpolation_curves": interpolation_curves,
    "sa_energy": sa_energy,
    "training_summary": training_summary,
    "training_vs_depth": training_vs_depth,
    "method_comparison": method_comparison,
    "stream_comparison": stream_comparison,
    "planted_recovery": planted_recovery,
    "sa_scaling": sa_scaling,
    "barrier_vs_compute": barrier_vs_compute,
    "label_noise": label_noise,
    "all_pairs": all_pairs,
    "theorem_rate": theorem_rate,
    "group_searches": group_searches,
    "group_vs_pairs": group_vs_pairs,
    "ensembles": ensembles,
    "layerwise_barriers": layerwise_barriers,
    "merge_many": merge_many,
    "barrier_vs_spawn": barrier_vs_spawn,
    "barrier_vs_epoch": barrier_vs_epoch,
}


def draw(name: str, tables: Mapping[str, pd.DataFrame], out: Path, options: Mapping[str, Any]) -> None:
    """Figure ``name`` of :data:`FIGURES` from ``tables`` to ``out``; when networks in the tables did not train or
    stopped short of their target, the figure says so above its title (:func:`notes.training_note`)."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose from {sorted(FIGURES)}")
    with figure_warning(training_note(tables)):
        FIGURES[name](tables, out, options)
