"""The tables of the studies that span many models per job (``groups``, ``all_pairs``): which barrier column the
figure options choose, and a clear error for a table written by an earlier version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from permlmc.plotting import palette
from permlmc.plotting.selection import DEFAULT_METRIC, DEFAULT_VALUE, METRICS, VALUES, choice

__all__ = ["many_model_barrier", "many_model_metric", "require_columns"]


def many_model_metric(options: Mapping[str, Any]) -> str:
    """The metric of the group and all-pairs tables the options choose: those tables hold the loss and the error
    only, so ``loss_calibrated`` reads the raw loss (and the axis label says so)."""
    metric = choice(options, "metric", DEFAULT_METRIC, METRICS)
    return "loss" if metric == "loss_calibrated" else metric


def many_model_barrier(options: Mapping[str, Any]) -> tuple[str, str]:
    """The column of the group and all-pairs tables the options choose (``error_barrier_mid``: metric ``_`` value)
    and its axis label (train barriers: the tables hold no test ones)."""
    metric = many_model_metric(options)
    value = choice(options, "value", DEFAULT_VALUE, VALUES)
    return f"{metric}_{value}", palette.metric_label("train", metric, value)


def require_columns(frame: pd.DataFrame, name: str, columns: Sequence[str], rule: str) -> None:
    """Raise unless a study table has ``columns``; a table from an earlier version names the rule to rerun."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"table {name!r} lacks columns {missing} (it has {list(frame.columns)}): its rows come "
                         f"from an earlier version; rerun them with `snakemake -R {rule}`")
