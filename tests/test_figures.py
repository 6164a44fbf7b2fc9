"""Every paper figure renders from small synthetic tables, atomically, and degrades to a note when empty."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from lmc.plotting import FIGURES, figures, style

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF"

EXPECTED = {
    "barrier_vs_width",
    "barrier_vs_depth",
    "real_vs_model_before",
    "real_vs_model_after",
    "real_vs_model_scatter",
    "interpolation_curves",
    "sa_energy",
    "training_summary",
}
SA_NAMING = {"real_vs_model_after", "real_vs_model_scatter", "interpolation_curves", "sa_energy"}

WIDTHS = [4, 16, 64]
DEPTHS = [1, 2, 3]
DEPTH_STUDY_WIDTH = 64
PAIRS = ["1-2", "1-3"]
METHODS = {"none": "", "weight_matching": "", "sa": "calibrated"}
DATASETS = ["mnist", "cifar10"]


def _configs() -> Iterator[tuple[str, int, int]]:
    """(dataset, depth, width): the width study at depth 1 and the depth study at width 64."""
    for dataset in DATASETS:
        for width in WIDTHS:
            yield dataset, 1, width
        for depth in DEPTHS[1:]:
            yield dataset, depth, DEPTH_STUDY_WIDTH


def _tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    barriers: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    traces: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    alphas = np.linspace(0.0, 1.0, 5)
    for dataset, depth, width in _configs():
        base = {"dataset": dataset, "arch": "mlp", "depth": depth, "width": width}
        for seed in (1, 2, 3):
            models.append(
                {
                    **base, "seed": seed, "epochs": 10,
                    "train_loss": 0.1 / width + rng.uniform(0, 0.01), "train_error": 0.05 / width,
                    "test_loss": 0.3 + rng.uniform(0, 0.02), "test_error": 0.1 + rng.uniform(0, 0.01),
                    "path": f"models/{dataset}/{width}/{seed}.safetensors",
                }
            )  # fmt: skip
        for kind, pair, (method, schedule) in itertools.product(("real", "model"), PAIRS, METHODS.items()):
            scale = {"none": 1.0, "weight_matching": 0.3, "sa": 0.6}[method] * depth
            for split, metric in itertools.product(("train", "test"), ("loss", "error")):
                height = scale * (0.5 + rng.uniform(0, 0.1)) / np.log2(width)
                barriers.append(
                    {
                        **base, "kind": kind, "pair": pair, "method": method, "sa_schedule": schedule,
                        "bn_mode": "none", "split": split, "metric": metric, "barrier": height,
                        "barrier_mid": 0.9 * height, "search_seconds": 0.01,
                    }
                )  # fmt: skip
                for alpha in alphas:
                    curves.append(
                        {
                            **base, "kind": kind, "pair": pair, "method": method, "split": split,
                            "metric": metric, "alpha": alpha, "value": 0.1 + height * 4 * alpha * (1 - alpha),
                        }
                    )  # fmt: skip
            if method == "sa" and dataset == "mnist":
                best = np.inf
                for step in (0, 1, 10, 100, 1000):
                    energy = 1.0 / (1 + step) + rng.uniform(0, 0.05)
                    best = min(best, energy)
                    traces.append(
                        {
                            **base, "kind": kind, "pair": pair, "sa_schedule": schedule, "step": step,
                            "temperature": 10.0 / (1 + step), "energy": energy, "best_energy": best,
                        }
                    )  # fmt: skip
    return {
        "barriers": pd.DataFrame(barriers, columns=figures.BARRIER_COLUMNS),
        "curves": pd.DataFrame(curves, columns=figures.CURVE_COLUMNS),
        "models": pd.DataFrame(models, columns=figures.MODEL_COLUMNS),
        "sa_traces": pd.DataFrame(traces, columns=figures.SA_TRACE_COLUMNS),
    }


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Synthetic tables round-tripped through CSV, as the workflow reads them (empty strings become NaN)."""
    folder = tmp_path_factory.mktemp("tables")
    read: dict[str, pd.DataFrame] = {}
    for name, frame in _tables().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        read[name] = pd.read_csv(folder / f"{name}.csv")
    return read


def _empty_tables() -> dict[str, pd.DataFrame]:
    return {name: frame.iloc[0:0] for name, frame in _tables().items()}


def _assert_single_image(folder: Path, out: Path, magic: bytes) -> None:
    assert out.exists()
    data = out.read_bytes()
    assert len(data) > 0
    assert data.startswith(magic)
    assert sorted(p.name for p in folder.iterdir()) == [out.name], "temporary files left behind"


def _capture_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make ``save_figure`` record every text of the figure (and still save it)."""
    texts: list[str] = []
    real_save = style.save_figure

    def recording_save(fig: Figure, out: str | Path) -> None:
        fig.canvas.draw()
        texts.extend(t.get_text() for t in fig.findobj(Text))
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
        for legend in legends:
            if legend is not None:
                texts.extend(t.get_text() for t in legend.get_texts())
                texts.append(legend.get_title().get_text())
        real_save(fig, out)

    monkeypatch.setattr(style, "save_figure", recording_save)
    return texts


def test_registry_holds_exactly_the_paper_figures() -> None:
    assert set(FIGURES) == EXPECTED
    assert all(callable(fn) for fn in FIGURES.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_renders_png(name: str, tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    out = tmp_path / f"{name}.png"
    FIGURES[name](tables, out, {})
    _assert_single_image(tmp_path, out, PNG_MAGIC)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_renders_pdf_and_names_the_sa_schedule(
    name: str, tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _capture_texts(monkeypatch)
    out = tmp_path / f"{name}.pdf"
    FIGURES[name](tables, out, {"split": "test", "metric": "error", "value": "barrier_mid"})
    _assert_single_image(tmp_path, out, PDF_MAGIC)
    assert not any(t.startswith("no data for") for t in texts)
    if name in SA_NAMING:
        assert any("calibrated" in t for t in texts), "SA rows present but the SA schedule is not named"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_with_empty_tables_still_writes_a_note(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _capture_texts(monkeypatch)
    out = tmp_path / f"{name}.png"
    FIGURES[name](_empty_tables(), out, {})
    _assert_single_image(tmp_path, out, PNG_MAGIC)
    assert any(t.startswith("no data for") for t in texts)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_without_its_table_writes_a_note(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.pdf"
    FIGURES[name]({}, out, {})
    _assert_single_image(tmp_path, out, PDF_MAGIC)


def test_unmatched_options_give_a_note(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _capture_texts(monkeypatch)
    FIGURES["barrier_vs_width"](tables, tmp_path / "w.png", {"depth": 99})
    FIGURES["real_vs_model_after"](tables, tmp_path / "a.png", {"methods": ["no_such_method"]})
    assert sum(t.startswith("no data for") for t in texts) == 2


def test_bad_option_is_rejected(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="value"):
        FIGURES["barrier_vs_depth"](tables, tmp_path / "d.png", {"value": "barrier_max"})
    assert list(tmp_path.iterdir()) == []


def test_missing_column_is_rejected(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    broken = {"barriers": tables["barriers"].drop(columns=["barrier_mid"])}
    with pytest.raises(ValueError, match="barrier_mid"):
        FIGURES["barrier_vs_width"](broken, tmp_path / "w.png", {})


def test_global_rc_params_are_left_alone(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    FIGURES["training_summary"](tables, tmp_path / "t.png", {})
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend().lower() == "agg"
