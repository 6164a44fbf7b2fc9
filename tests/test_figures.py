"""Every paper figure renders from small synthetic tables, atomically, and degrades to a note when empty;
barrier figures show one BatchNorm mode at a time."""

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

from permlmc.artifacts import tables as library_tables
from permlmc.plotting import FIGURES, draw, notes, selection, style

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAGIC = {"png": PNG_MAGIC, "pdf": b"%PDF", "svg": b"<?xml"}
"""How a file of each format the figures are written in begins."""

EXPECTED = {
    "barrier_vs_width",
    "barrier_vs_depth",
    "real_vs_model_before",
    "real_vs_model_after",
    "real_vs_model_scatter",
    "error_vs_barrier",
    "task_grid",
    "bn_modes",
    "midpoint_accuracy",
    "temperature_scaled_barriers",
    "interpolation_curves",
    "sa_energy",
    "training_summary",
    "training_vs_depth",
    "method_comparison",
    "stream_comparison",
    "planted_recovery",
    "sa_scaling",
    "barrier_vs_compute",
    "label_noise",
    "all_pairs",
    "theorem_rate",
    "group_searches",
    "group_vs_pairs",
    "ensembles",
    "layerwise_barriers",
    "merge_many",
    "barrier_vs_spawn",
    "barrier_vs_epoch",
}
SA_NAMING = {"real_vs_model_after", "real_vs_model_scatter", "bn_modes", "interpolation_curves", "sa_energy",
             "group_vs_pairs"}

PAIRS = ["1-2", "1-3"]
METHODS = {"none": "", "weight_matching": "", "sa": "calibrated", "sa-steps10": "calibrated",
           "sa-steps100": "calibrated", "weight_matching-stream0": ""}
RECOVERY = {"none": 0.1, "weight_matching": 1.0, "sa": 0.5, "sa-steps10": 0.2, "sa-steps100": 0.3,
            "weight_matching-stream0": 0.4}
# per arch: (datasets, width study depth, widths, depth study width, depths)
STUDIES = {
    "mlp": (["mnist", "cifar10", "mnist-noise20"], 1, [4, 16, 64], 64, [1, 2, 3]),
    "vgg": (["cifar10"], 11, [8, 16], 16, [11, 13]),
    "resnet": (["mnist"], 18, [16], 16, [18]),
}
WORKFLOW_OPTIONS = {  # as the workflow passes them: per arch, the width study's depth and the depth study's width
    "depth": {arch: study[1] for arch, study in STUDIES.items()},
    "width": {arch: study[3] for arch, study in STUDIES.items()},
}
CURVE_PANELS = {("train", "loss"), ("test", "error")}
"""(split, metric) with curves: two of the four keep the curve figure small."""
BN_SCALE = {"interpolate": 1.0, "reset": 0.5, "repair": 0.2}
"""Barrier multiplier per BatchNorm mode: every mode's rows differ, so mixing them shows."""


def _configs() -> Iterator[tuple[str, str, int, int]]:
    """(dataset, arch, depth, width) of every width study and depth study."""
    for arch, (datasets, study_depth, widths, study_width, depths) in STUDIES.items():
        for dataset in datasets:
            grid = {(study_depth, w) for w in widths} | {(d, study_width) for d in depths}
            for depth, width in sorted(grid):
                yield dataset, arch, depth, width


def _barrier_height(arch: str, depth: int, width: int, method: str, bn_mode: str, noise: float) -> float:
    scale = {"none": 1.0, "weight_matching": 0.3, "sa": 0.6, "sa-steps10": 0.9, "sa-steps100": 0.8,
             "weight_matching-stream0": 0.5}[method]
    scale *= BN_SCALE[bn_mode]
    return scale * (0.5 + noise) * (depth if arch == "mlp" else depth / 10) / np.log2(width)


STUDY_TABLES = ("all_pairs", "theorem", "groups", "ensembles", "layerwise", "merge_many", "spawning", "along_training")


def _study_rows(rng: np.random.Generator) -> dict[str, list[dict[str, Any]]]:
    """Rows shaped like the study commands write them (permlmc.cli.study.write_rows)."""
    net = {"dataset": "mnist", "arch": "mlp", "depth": 1, "width": 4}
    all_pairs = [
        {**net, "method": "brute_force", "a": a, "b": b, "stage": stage, "independent": (a, b) in ((1, 4), (2, 5)),
         **{f"{prefix}{metric}_barrier{value}": x * scale for prefix, scale in (("", 1.0), ("indirect_", 0.5))
            for metric in ("loss", "error") for value in ("", "_mid")}}
        for a, b in itertools.combinations(range(1, 6), 2) for stage in ("before", "after")
        for x in [rng.uniform(0.2, 0.4) if stage == "before" else rng.uniform(0.0, 0.2)]
    ]
    theorem = [
        {"method": "weight_matching", "input_dim": d, "width": h, "draw": draw, "gap_before": 0.1,
         "gap_after": h ** (-1 / (2 * d + 4)) * rng.uniform(0.05, 0.1), "rate": h ** (-1 / (2 * d + 4))}
        for d in (2, 4) for h in (4, 16, 64) for draw in range(2)
    ]
    groups = [  # every MNIST MLP of the width and depth studies, as `groups.studies` makes them
        {"dataset": dataset, "arch": arch, "depth": depth, "width": width, "kind": kind, "method": method,
         "models": 5, "stage": stage, "search_seconds": 1.0,
         **{f"{metric}_barrier{value}": x for metric in ("loss", "error") for value in ("", "_mid")}}
        for dataset, arch, depth, width in _configs() if (dataset, arch) == ("mnist", "mlp")
        for kind in ("real", "model") for method in ("sa1", "sa2", "weight_matching") for stage in ("before", "after")
        for x in [0.3 if stage == "before" else rng.uniform(0, 0.2)]
    ]
    ensembles = [
        {**net, "ensemble": ensemble, "member": member, "test_loss": 0.3, "test_error": error,
         "test_accuracy": 1 - error}
        for ensemble, member, error in [
            ("trained pair, none", "model A", 0.1), ("trained pair, none", "output ensemble", 0.08),
            ("trained pair, none", "weight average", 0.5), ("trained pair, sa", "weight average", 0.3),
            ("SL", "weight average", 0.09), ("functional_difference + SL", "weight average", 0.07),
        ]
    ]
    layerwise = [
        {**net, "kind": kind, "pair": "1-2", "method": method, "layer": layer, "position": position, "split": split,
         "metric": metric, "moved": moved, "barrier": height * (position + 1 if moved == "up_to" else 0.1),
         "barrier_mid": 0.9 * height}
        for kind in ("real", "model") for method in ("none", "weight_matching") for moved in ("alone", "up_to")
        for position, layer in enumerate(("layers.0", "layers.1", "head"))
        for split in ("train", "test") for metric in ("loss", "error")
        for height in [rng.uniform(0.1, 0.3) if method == "none" else rng.uniform(0.0, 0.1)]
    ]
    merging = [
        {**net, "n": n, "method": method, "split": split, "loss": 0.3 * n * scale, "error": 0.1 * n * scale}
        for n in (2, 3, 4) for method, scale in (("none", 1.0), ("align_to_first", 0.5), ("merge_many", 0.4))
        for split in ("train", "test")
    ] + [{**net, "n": n, "method": "cycle", "cycle_error": 0.2} for n in (3, 4)]
    return {"all_pairs": all_pairs, "theorem": theorem, "groups": groups, "ensembles": ensembles,
            "layerwise": layerwise, "merge_many": merging,
            "spawning": [{**net, "spawn_epoch": k, "method": method, "split": split, "metric": metric,
                          "barrier": scale / (1 + k), "barrier_mid": scale / (2 + k)}
                         for k in (0, 1, 2, 5) for method, scale in (("none", 1.0), ("weight_matching", 0.3))
                         for split in ("train", "test") for metric in ("loss", "error")],
            "along_training": [{**net, "epoch": e, "method": method, "split": split, "metric": metric,
                                "barrier": scale * e / (1 + e), "barrier_mid": scale * e / (2 + e)}
                               for e in (0, 1, 5, 20) for method, scale in (("none", 1.0), ("weight_matching", 0.3))
                               for split in ("train", "test") for metric in ("loss", "error")]}


def _tables() -> dict[str, pd.DataFrame]:
    """Tables with the library's columns; vgg/resnet rows carry all three BatchNorm modes."""
    rng = np.random.default_rng(0)
    rows: dict[str, list[dict[str, Any]]] = {"barriers": [], "curves": [], "sa_traces": [], "models": []}
    for dataset, arch, depth, width in _configs():
        net = {"dataset": dataset, "arch": arch, "depth": depth, "width": width}
        for kind, seed in [("real", 1), ("real", 2), ("real", 3), ("model", 1)]:
            rows["models"].append({
                **net, "kind": kind, "seed": seed, "copy": 1 if kind == "model" else "", "epochs": 10, "steps": 100,
                "stopped_by": "max_epochs", "train_loss": 0.1 / width + rng.uniform(0, 0.01),
                "train_error": 0.05 / width, "test_loss": 0.3 + rng.uniform(0, 0.02),
                "test_error": 0.99 if kind == "model" else 0.1 + 0.1 / width + rng.uniform(0, 0.01),
                "wall_seconds": 1.0, "path": f"models/{dataset}/{arch}/{width}/{seed}.safetensors",
            })  # fmt: skip
        modes = list(BN_SCALE) if arch != "mlp" else ["interpolate"]
        for kind, pair, (method, schedule) in itertools.product(("real", "model"), PAIRS, METHODS.items()):
            labels = {**net, "kind": kind, "pair": pair, "method": method, "algorithm": method.partition("-")[0],
                      "sa_schedule": schedule, "residual": "full"}
            for bn_mode, split, metric in itertools.product(modes, ("train", "test"), selection.METRICS):
                height = _barrier_height(arch, depth, width, method, bn_mode, rng.uniform(0, 0.1))
                height *= 0.4 if metric == "loss_temperature_scaled" else 1.0  # temperature scaling removes part of it
                rows["barriers"].append({
                    **labels, "bn_mode": bn_mode, "split": split, "metric": metric, "barrier": height,
                    "barrier_mid": 0.9 * height, "search_seconds": 0.01 * (1 + len(method)),
                    "recovery": RECOVERY[method] if kind == "model" else None, "path": "barrier.json",
                })  # fmt: skip
                alphas = np.linspace(0.0, 1.0, 5) if (split, metric) in CURVE_PANELS else []
                for alpha in alphas:
                    rows["curves"].append({
                        **labels, "bn_mode": bn_mode, "split": split, "metric": metric, "alpha": alpha,
                        "value": 0.1 + height * 4 * alpha * (1 - alpha),
                    })  # fmt: skip
            if method == "sa" and dataset == "mnist":
                best = np.inf
                for step in (0, 1, 10, 100, 1000):
                    energy = 1.0 / (1 + step) + rng.uniform(0, 0.05)
                    best = min(best, energy)
                    rows["sa_traces"].append({
                        **labels, "step": step, "temperature": 10.0 / (1 + step), "energy": energy,
                        "best_energy": best,
                    })  # fmt: skip
    rows |= _study_rows(rng)
    columns = {
        **{name: list(found[0]) for name, found in rows.items() if name in STUDY_TABLES},
        "barriers": library_tables.BARRIER_COLUMNS,
        "curves": library_tables.CURVE_COLUMNS,
        "sa_traces": library_tables.TRACE_COLUMNS,
        "models": library_tables.MODEL_COLUMNS,
    }
    return {name: pd.DataFrame(found, columns=columns[name]) for name, found in rows.items()}


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


def _capture(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[Figure]]:
    """Make ``save_figure`` record every text and the figure itself (and still save it)."""
    texts: list[str] = []
    figures: list[Figure] = []
    real_save = style.save_figure

    def recording_save(fig: Figure, out: str | Path) -> None:
        texts.extend(t.get_text() for t in fig.findobj(Text))
        for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
            if legend is not None:
                texts.extend(t.get_text() for t in legend.get_texts())
                texts.append(legend.get_title().get_text())
        figures.append(fig)
        real_save(fig, out)

    monkeypatch.setattr(style, "save_figure", recording_save)
    return texts, figures


def _is_placeholder(fig: Figure) -> bool:
    """The one-panel ``no data for ...`` figure (a single axes switched off)."""
    return len(fig.axes) == 1 and not fig.axes[0].axison


def _panel(fig: Figure, title_start: str) -> Any:
    found = [ax for ax in fig.axes if ax.get_title().startswith(title_start)]
    assert len(found) == 1, [ax.get_title() for ax in fig.axes]
    return found[0]


def test_registry_holds_exactly_the_figures() -> None:
    assert set(FIGURES) == EXPECTED
    assert all(callable(fn) for fn in FIGURES.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_renders_with_workflow_options_and_names_the_sa_schedule(
    name: str, tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One full render of each figure (PNG, as the workflow draws them, through :func:`draw`: one network of the
    tables did not train, and the figure names it in its warning; the placeholder tests below write every figure in
    one of the formats, and every figure is built with the default options by the training-note test)."""
    texts, figures = _capture(monkeypatch)
    out = tmp_path / f"{name}.png"
    options = {**WORKFLOW_OPTIONS, "split": "test", "metric": "error", "value": "barrier_mid", "bn_mode": "reset"}
    models, untrained = _one_untrained(tables["models"])
    draw(name, {**tables, "models": models}, out, options)
    _assert_single_image(tmp_path, out, PNG_MAGIC)
    assert not _is_placeholder(figures[0])
    if name in SA_NAMING:
        assert any("calibrated" in t for t in texts), "SA rows present but the SA schedule is not named"
    drawn = " ".join(t.get_text() for t in figures[-1].findobj(Text))  # with the warning save_figure placed
    assert "did not train" in drawn and untrained in drawn


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_with_empty_tables_still_writes_a_note(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, figures = _capture(monkeypatch)
    out = tmp_path / f"{name}.png"
    FIGURES[name](_empty_tables(), out, {})
    _assert_single_image(tmp_path, out, PNG_MAGIC)
    assert _is_placeholder(figures[0])
    assert any(t.startswith("no data for") for t in texts)


@pytest.mark.parametrize(("name", "fmt"), list(zip(sorted(EXPECTED), itertools.cycle(sorted(MAGIC)))))
def test_figure_without_its_table_writes_a_note(name: str, fmt: str, tmp_path: Path) -> None:
    """In each format in turn, figure after figure (the writer of a format is the same for every figure)."""
    out = tmp_path / f"{name}.{fmt}"
    FIGURES[name]({}, out, {})
    _assert_single_image(tmp_path, out, MAGIC[fmt])


@pytest.mark.parametrize("fmt", sorted(MAGIC))
def test_a_figure_drawn_again_is_the_same_file(fmt: str, tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    """No date or other per-run value in the file: a rerun of a figure job changes nothing (a small figure of
    lines, texts and a legend: what a writer could stamp does not depend on the figure)."""
    written = []
    for attempt in ("first", "again"):
        out = tmp_path / attempt / f"barrier_vs_epoch.{fmt}"
        out.parent.mkdir()
        FIGURES["barrier_vs_epoch"](tables, out, {})
        written.append(out.read_bytes())
    assert written[0].startswith(MAGIC[fmt])
    assert written[0] == written[1]


def test_the_saved_box_holds_everything_drawn(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The box save_figure keeps holds the figure's whole drawing (what ``bbox_inches="tight"`` measures), here in a
    one-column figure whose suptitle and warning are wider than its panels."""
    measured: list[tuple[Any, Any, float]] = []
    keep = style._laid_out_box

    def measuring(fig: Figure, pad: float = 0.1) -> Any:  # the kept box, and the whole drawing as it is then laid out
        kept = keep(fig, pad)
        measured.append((kept, fig.get_tightbbox(fig.canvas.get_renderer()), fig.get_figwidth()))
        return kept

    monkeypatch.setattr(style, "_laid_out_box", measuring)
    models, _ = _one_untrained(tables["models"])
    draw("real_vs_model_after", {**tables, "models": models}, tmp_path / "f.png", WORKFLOW_OPTIONS)
    ((kept, drawn, width),) = measured  # inches
    assert not isinstance(kept, str)
    assert kept.x0 <= drawn.x0 and kept.y0 <= drawn.y0 and kept.x1 >= drawn.x1 and kept.y1 >= drawn.y1
    assert kept.width > width + 1  # the title reaches beyond the panels by inches: the box widened for it


def test_a_figure_whose_layout_collapsed_is_saved_whole(tmp_path: Path) -> None:
    with style.figure_context():
        fig, grid = style.make_grid(1, 1, panel=(0.3, 0.2))
        grid[0][0].set_yticks([0.5], ["a tick label far wider than the figure"])
        assert style._laid_out_box(fig) == "tight"
        with pytest.warns(UserWarning, match="constrained_layout not applied"):
            style.save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes().startswith(PNG_MAGIC)


def test_bn_modes_without_batchnorm_networks_names_them(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, _ = _capture(monkeypatch)
    FIGURES["bn_modes"](tables, tmp_path / "b.png", {"arch": "mlp"})
    assert any(t.startswith("no data for BatchNorm networks") for t in texts)


def test_barrier_rows_hold_one_bn_mode(tables: dict[str, pd.DataFrame]) -> None:
    every, _ = selection.barrier_rows(tables, {}, every_bn_mode=True)
    assert set(every["bn_mode"]) == set(BN_SCALE)
    for bn_mode in BN_SCALE:
        rows, _ = selection.barrier_rows(tables, {"bn_mode": bn_mode})
        assert set(rows["bn_mode"]) == {bn_mode}
        assert set(rows["arch"]) == ({"mlp", "vgg", "resnet"} if bn_mode == "interpolate" else {"vgg", "resnet"})
    with pytest.raises(ValueError, match="bn_mode"):
        selection.barrier_rows(tables, {"bn_mode": ["reset", "repair"]})


@pytest.mark.parametrize("bn_mode", ["interpolate", "repair"])
def test_barrier_vs_width_draws_one_bn_mode(
    bn_mode: str, tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The VGG line is the mean over pairs of the chosen mode's barriers, not a mix of modes."""
    _, figures = _capture(monkeypatch)
    options = {"split": "train", "metric": "loss", "value": "barrier", "bn_mode": bn_mode}
    FIGURES["barrier_vs_width"](tables, tmp_path / "w.png", options)
    rows = tables["barriers"]
    rows = rows[
        (rows["arch"] == "vgg") & (rows["depth"] == 11) & (rows["kind"] == "real") & (rows["method"] == "none")
        & (rows["split"] == "train") & (rows["metric"] == "loss") & (rows["bn_mode"] == bn_mode)
    ]  # fmt: skip
    expected = rows.groupby("width")["barrier"].mean().sort_index().to_numpy()
    (line,) = _panel(figures[0], "VGG").get_lines()
    np.testing.assert_allclose(line.get_ydata(), expected)


def test_depth_study_ticks_are_the_depths_present(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, figures = _capture(monkeypatch)
    FIGURES["barrier_vs_depth"](tables, tmp_path / "d.png", {})
    ax = _panel(figures[0], "VGG")
    assert list(ax.get_xticks()) == [11, 13]
    assert "VGG-n" in ax.get_xlabel()


def test_error_vs_barrier_reads_trained_seeds_only(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permuted copies (kind model, test error 0.99 here) are not trained networks: no point sits at 0.99."""
    _, figures = _capture(monkeypatch)
    FIGURES["error_vs_barrier"](tables, tmp_path / "e.png", {})
    points = np.concatenate([c.get_offsets() for c in figures[0].axes[0].collections])
    assert len(points) == len(list(_configs()))
    assert points[:, 0].max() < 0.5


def test_unmatched_options_give_a_note(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, _ = _capture(monkeypatch)
    FIGURES["barrier_vs_width"](tables, tmp_path / "w.png", {"depth": 99})
    FIGURES["real_vs_model_after"](tables, tmp_path / "a.png", {"methods": ["no_such_method"]})
    assert sum(t.startswith("no data for") for t in texts) == 2


def test_bad_option_is_rejected(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="value"):
        FIGURES["barrier_vs_depth"](tables, tmp_path / "d.png", {"value": "barrier_max"})
    with pytest.raises(ValueError, match="bn_mode"):
        FIGURES["interpolation_curves"](tables, tmp_path / "c.png", {"bn_mode": "recompute"})
    assert list(tmp_path.iterdir()) == []


def test_missing_column_is_rejected(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    broken = {"barriers": tables["barriers"].drop(columns=["bn_mode"])}
    with pytest.raises(ValueError, match="bn_mode"):
        FIGURES["barrier_vs_width"](broken, tmp_path / "w.png", {})


def test_global_rc_params_are_left_alone(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    FIGURES["training_summary"](tables, tmp_path / "t.png", {})
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend().lower() == "agg"


def test_group_vs_pairs_reads_pairs_as_the_groups_are_measured(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SA-on-pairs line takes the pairs' train barriers of the groups' metric with interpolated statistics,
    whatever `bn_mode` and temperature scaling the other figures show; every MNIST MLP width of the groups is a
    point."""
    texts, figures = _capture(monkeypatch)
    options = {**WORKFLOW_OPTIONS, "split": "test", "metric": "loss_temperature_scaled", "value": "barrier",
               "bn_mode": "reset"}
    FIGURES["group_vs_pairs"](tables, tmp_path / "g.png", options)
    ax = _panel(figures[0], "MNIST \u00b7 MLP \u00b7 vs width")
    lines = {line.get_label(): line for line in ax.get_lines()}
    pair_line = next(line for label, line in lines.items() if label.startswith("real") and label.endswith("n = 2"))
    barriers = tables["barriers"]
    rows = barriers[(barriers.dataset == "mnist") & (barriers.arch == "mlp") & (barriers.depth == 1)
                    & (barriers.kind == "real") & (barriers.method == "sa") & (barriers.split == "train")
                    & (barriers.metric == "loss") & (barriers.bn_mode == "interpolate")]
    expected = rows.groupby("width")["barrier"].mean().sort_index()
    assert list(pair_line.get_xdata()) == list(expected.index)
    assert np.allclose(pair_line.get_ydata(), expected.to_numpy())
    assert any(label.startswith("our model") and label.endswith("n = 5") for label in lines)
    assert any(t.startswith("train loss barrier, max over") for t in texts)


@pytest.mark.parametrize("name,table,rule", [("all_pairs", "all_pairs", "compare_all_pairs"),
                                             ("group_vs_pairs", "groups", "search_group")])
def test_a_study_table_of_an_earlier_version_names_the_rule_to_rerun(
    name: str, table: str, rule: str, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    old = tables[table].drop(columns=[c for c in tables[table].columns if c.endswith("_mid") or c == "independent"])
    with pytest.raises(ValueError, match=f"snakemake -R {rule}"):
        FIGURES[name]({**tables, table: old}, tmp_path / "f.png", {})


def test_stopping_note_counts_networks_per_dataset_and_names_a_few_capped() -> None:
    rows = [{"dataset": dataset, "arch": "mlp", "depth": 1, "width": width, "kind": "real", "seed": seed,
             "stopped_by": "target_loss" if (dataset, width) == ("mnist", 64) else "max_epochs"}
            for dataset in ("mnist", "mnist-noise20") for width in (4, 8, 16, 32, 64, 128) for seed in (1, 2)]
    note = notes.stopping_note({"models": pd.DataFrame(rows)})
    assert note.startswith("stopping rule (train CE \u2264 target) reached by 1 of 12 networks; epoch cap: ")
    assert "mlp-d1-w4 on mnist (2/2 seeds)" in note and note.endswith("7 more (models.csv)")


def _one_untrained(models: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``models`` with every network trained but one (seed 2 of the first real network), and that network's name."""
    models = models.assign(trained="yes")
    first = models.index[(models["kind"] == "real") & (models["seed"] == 2)][0]
    row = models.loc[first]
    models.loc[first, "trained"] = "no"
    return models, f"{row['arch']}-d{row['depth']}-w{row['width']}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_figure_of_trained_networks_has_no_warning(
    name: str, tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart of the warning checked in the full render above."""
    saved: list[str] = []

    def record(fig: Figure, path: Any, **_: Any) -> None:  # the texts of the saved figure, without rendering it
        saved.append(" ".join(t.get_text() for t in fig.findobj(Text)))
        Path(path).write_bytes(b"figure")

    monkeypatch.setattr(Figure, "savefig", record)
    monkeypatch.setattr(Figure, "draw_without_rendering", lambda _: None)  # the layout save_figure runs first
    draw(name, {**tables, "models": tables["models"].assign(trained="yes")}, tmp_path / f"{name}.png", {})
    assert saved and "Warning" not in saved[-1]
