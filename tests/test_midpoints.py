"""Midpoint accuracy stage by stage, against curves built by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from permlmc.plotting import FIGURES, style
from permlmc.plotting.midpoints import midpoint_accuracies

NET = {"dataset": "fashion_mnist", "depth": 11, "width": 16, "sa_schedule": "", "residual": "full",
       "split": "test", "metric": "error"}


def _curve(arch: str, kind: str, pair: str, method: str, bn_mode: str, errors: tuple[float, float, float]) -> list:
    return [{**NET, "arch": arch, "kind": kind, "pair": pair, "method": method, "bn_mode": bn_mode, "alpha": a,
             "value": e} for a, e in zip((0.0, 0.5, 1.0), errors, strict=True)]


@pytest.fixture
def curves() -> pd.DataFrame:
    rows = []
    for pair, shift in (("1-2", 0.0), ("1-3", 0.02)):
        rows += _curve("vgg", "real", pair, "none", "interpolate", (0.10, 0.90 - shift, 0.12))
        rows += _curve("vgg", "real", pair, "weight_matching", "interpolate", (0.10, 0.50, 0.12))
        rows += _curve("vgg", "real", pair, "weight_matching-statistics0", "interpolate", (0.10, 0.40, 0.12))
        rows += _curve("vgg", "real", pair, "weight_matching", "reset", (0.11, 0.20 + shift, 0.13))
        rows += _curve("vgg", "real", pair, "weight_matching", "repair", (0.11, 0.18, 0.13))
        rows += _curve("vgg_ln", "real", pair, "none", "interpolate", (0.14, 0.70, 0.16))
        rows += _curve("vgg_ln", "real", pair, "weight_matching", "interpolate", (0.14, 0.30, 0.16))
    return pd.DataFrame(rows)


def test_each_stage_reads_its_method_mode_and_alpha(curves: pd.DataFrame) -> None:
    table = midpoint_accuracies({"curves": curves}).set_index(["arch", "stage"])
    assert table.loc[("vgg", "endpoints"), "mean"] == pytest.approx(1 - 0.11)
    assert table.loc[("vgg", "naive"), "mean"] == pytest.approx(1 - 0.89)
    assert table.loc[("vgg", "naive"), "std"] == pytest.approx(pd.Series([0.10, 0.12]).std())
    assert table.loc[("vgg", "weight matching"), "mean"] == pytest.approx(0.5)
    assert table.loc[("vgg", "weights only"), "mean"] == pytest.approx(0.6)
    assert table.loc[("vgg", "+ reset"), "mean"] == pytest.approx(1 - 0.21)
    assert table.loc[("vgg", "+ REPAIR"), "mean"] == pytest.approx(0.82)
    assert table.loc[("vgg", "+ REPAIR"), "count"] == 2
    ln = midpoint_accuracies({"curves": curves}).query("arch == 'vgg_ln'")
    assert list(ln["stage"]) == ["endpoints", "naive", "weight matching"]  # no BatchNorm: no reset, no REPAIR


def test_other_splits_and_metrics_are_not_mixed_in(curves: pd.DataFrame) -> None:
    other_split, other_metric = curves.assign(split="train", value=0.0), curves.assign(metric="loss", value=3.0)
    mixed = pd.concat([curves, other_split, other_metric], ignore_index=True)
    assert midpoint_accuracies({"curves": mixed}).equals(midpoint_accuracies({"curves": curves}))
    train = midpoint_accuracies({"curves": mixed}, split="train")
    assert set(train["mean"]) == {1.0}  # the train rows' error 0, nothing of the loss rows


def test_figure_draws_one_bar_per_stage_and_network(
    curves: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[Figure] = []
    monkeypatch.setattr(style, "save_figure", lambda fig, out: drawn.append(fig))
    monkeypatch.setattr(style, "no_data_figure", lambda *args: pytest.fail("drew the no-data note"))
    FIGURES["midpoint_accuracy"]({"curves": curves}, tmp_path / "midpoint.png", {"split": "test"})
    real, model = drawn[0].axes[:2]
    assert len(real.patches) == 6 + 3  # VGG: every stage; VGG (LN): endpoints, naive, weight matching
    assert len(model.patches) == 0  # no S' curves given
    assert [t.get_text() for t in real.get_xticklabels()][1].startswith("VGG-11 (LN)")
