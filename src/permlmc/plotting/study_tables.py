"""The tables of the studies that span many models per job (``groups``, ``all_pairs``): which barrier column the
figure options choose."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from permlmc.plotting import palette
from permlmc.plotting.selection import DEFAULT_METRIC, DEFAULT_VALUE, METRICS, VALUES, choice

__all__ = ["many_model_barrier", "many_model_metric"]


def many_model_metric(options: Mapping[str, Any]) -> str:
    """The metric of the group and all-pairs tables the options choose: those tables hold the loss and the error
    only, so ``loss_temperature_scaled`` reads the raw loss (and the axis label says so)."""
    metric = choice(options, "metric", DEFAULT_METRIC, METRICS)
    return "loss" if metric == "loss_temperature_scaled" else metric


def many_model_barrier(options: Mapping[str, Any]) -> tuple[str, str]:
    """The column of the group and all-pairs tables the options choose (``error_barrier_mid``: metric ``_`` value)
    and its axis label (train barriers: the tables hold no test ones)."""
    metric = many_model_metric(options)
    value = choice(options, "value", DEFAULT_VALUE, VALUES)
    return f"{metric}_{value}", palette.metric_label("train", metric, value)
