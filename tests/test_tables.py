"""The per-method summary table: means over pairs and the gap to the exact (brute-force) search."""

from __future__ import annotations

import math

import pandas as pd

from permlmc.artifacts.tables import method_summary


def _row(method: str, pair: str, metric: str, barrier: float, mid: float, recovery: float | None) -> dict:
    return {"dataset": "digits", "arch": "mlp", "depth": 1, "width": 4, "kind": "model", "pair": pair,
            "method": method, "bn_mode": "interpolate", "split": "train", "metric": metric, "barrier": barrier,
            "barrier_mid": mid, "search_seconds": 2.0, "recovery": recovery}


def test_method_summary_averages_pairs_and_measures_the_gap_to_brute_force() -> None:
    rows = [
        _row("weight_matching", "1-2", "loss", 0.2, 0.1, 1.0), _row("weight_matching", "3-4", "loss", 0.4, 0.3, 0.5),
        _row("weight_matching", "1-2", "error", 0.05, 0.04, 1.0),
        _row("weight_matching", "3-4", "error", 0.07, 0.06, 0.5),
        _row("brute_force", "1-2", "loss", 0.1, 0.1, 0.0), _row("brute_force", "3-4", "loss", 0.1, 0.1, 0.0),
        _row("brute_force", "1-2", "error", 0.01, 0.01, 0.0), _row("brute_force", "3-4", "error", 0.03, 0.03, 0.0),
        {**_row("weight_matching", "1-2", "loss", 9.0, 9.0, 0.0), "split": "test"},  # another split: ignored
    ]
    summary = method_summary(pd.DataFrame(rows)).set_index("method")
    wm = summary.loc["weight_matching"]
    assert math.isclose(wm["loss_barrier"], 0.3) and math.isclose(wm["recovery"], 0.75) and wm["pairs"] == 2
    assert math.isclose(wm["error_barrier_mid"], 0.05)
    assert math.isclose(wm["gap_to_exact"], 0.05 - 0.02)
    assert summary.loc["brute_force", "gap_to_exact"] == 0.0
