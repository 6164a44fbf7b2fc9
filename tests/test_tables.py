"""The tables: the per-method summary (means over pairs, the gap to the exact brute-force search), whether networks
trained, and a pair's result files read back as written."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from permlmc.artifacts.files import write_json
from permlmc.artifacts.pair_result import CURVE_FIELDS, barrier_entries, read_curve, read_pair_result, write_pair_result
from permlmc.artifacts.tables import CURVE_COLUMNS, barrier_tables, method_summary, model_table


def _row(method: str, pair: str, metric: str, barrier: float, mid: float, recovery: float | None) -> dict:
    return {"dataset": "digits", "arch": "mlp", "depth": 1, "width": 4, "kind": "model", "pair": pair,
            "method": method, "bn_mode": "interpolate", "split": "train", "metric": metric, "barrier": barrier,
            "barrier_mid": mid, "search_seconds": 2.0, "recovery": recovery, "trained": "yes"}


def test_method_summary_averages_pairs_and_measures_the_gap_to_brute_force() -> None:
    rows = [
        _row("weight_matching", "1-2", "loss", 0.2, 0.1, 1.0),
        {**_row("weight_matching", "3-4", "loss", 0.4, 0.3, 0.5), "trained": "no"},  # one pair did not train
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
    assert wm["trained"] == "no" and summary.loc["brute_force", "trained"] == "yes"  # the worst of its pairs


def test_models_and_pairs_say_whether_their_networks_trained(tmp_path: Path) -> None:
    def sidecar(name: str, train_error: float) -> str:
        path = tmp_path / f"{name}.json"
        write_json(path, {
            "architecture": {"arch": "mlp", "depth": 1, "width": 8, "num_classes": 10}, "dataset": {"name": "digits"},
            "seed": 1, "epochs": 3, "steps": 9, "stopped_by": "max_epochs", "training": {"target_loss": 0.01},
            "final": {"train_loss": 0.005, "train_error": train_error, "test_loss": 0.1, "test_error": 0.1}})
        return str(path.with_suffix(".safetensors"))

    good, bad = sidecar("good", 0.0), sidecar("bad", 0.9)
    models = model_table([tmp_path / "good.json", tmp_path / "bad.json"])
    assert models["trained"].tolist() == ["yes", "no"] and "chance 0.90" in models["trained_why"].iloc[1]
    curve = tmp_path / "curve.csv"
    pd.DataFrame(columns=CURVE_COLUMNS).to_csv(curve, index=False)
    paths = []
    gone = str(tmp_path / "missing.safetensors")
    for name, (a, b) in {"both": (good, good), "one": (good, bad), "gone": (good, gone)}.items():
        paths.append(tmp_path / f"{name}.json")
        write_json(paths[-1], {"pair": name, "model_a": a, "model_b": b, "search_seconds": 0.0, "curve": str(curve),
                               "barriers": {"interpolate": {"train": {"error": {"sup": 0.0, "mid": 0.0}}}}})
    found = barrier_tables(paths)["barriers"].set_index("pair")["trained"]
    assert found.to_dict() == {"both": "yes", "one": "no", "gone": ""}


def test_a_pair_result_reads_back_as_written(tmp_path: Path) -> None:
    """`barrier.json` and `curve.csv` of a pair: what the pair job writes is what the tables read, value for value."""
    rows = [("interpolate", alpha, split, metric, value) for alpha in (0.0, 0.5, 1.0) for split in ("train", "test")
            for metric, value in (("loss", 1 / 3 + alpha), ("error", alpha / 7))]
    barriers = {("interpolate", "train", "loss"): {"sup": 0.25, "mid": 0.125},
                ("reset", "train", "error"): {"sup": 0.5, "mid": 1 / 3}}
    write_pair_result(tmp_path / "barrier.json", tmp_path / "curve.csv", rows, barriers, {"pair": "1-2"})
    record = read_pair_result(tmp_path / "barrier.json")
    assert record["pair"] == "1-2" and record["curve"] == str(tmp_path / "curve.csv")
    assert {(m, s, q): dict(v) for m, s, q, v in barrier_entries(record)} == barriers
    curve = read_curve(record)
    assert list(curve.columns) == list(CURVE_FIELDS)
    assert list(curve.itertuples(index=False, name=None)) == rows  # floats written with repr: exact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["barrier.json", "curve.csv"]  # no temporary left
