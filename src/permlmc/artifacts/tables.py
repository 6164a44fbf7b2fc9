"""Tidy tables gathered from per-job JSON sidecars: the only input of every figure."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.artifacts.files import atomic_path, read_json
from permlmc.artifacts.pair_result import barrier_entries, read_curve, read_pair_result
from permlmc.artifacts.trained import VERDICTS, training_verdict
from permlmc.types import PathLike

LABELS = ["dataset", "arch", "depth", "width", "kind", "pair", "method", "algorithm", "sa_schedule", "residual"]
BARRIER_COLUMNS = [*LABELS, "bn_mode", "split", "metric", "barrier", "barrier_mid", "search_seconds", "recovery",
                   "path", "trained"]
CURVE_COLUMNS = [*LABELS, "bn_mode", "split", "metric", "alpha", "value"]
TRACE_COLUMNS = [*LABELS, "step", "temperature", "energy", "best_energy"]
MODEL_COLUMNS = ["dataset", "arch", "depth", "width", "kind", "seed", "copy", "epochs", "steps", "stopped_by",
                 "train_loss", "train_error", "test_loss", "test_error", "wall_seconds", "path", "trained",
                 "trained_why"]
MODEL_REPORT_COLUMNS = [c for c in MODEL_COLUMNS if c not in ("steps", "wall_seconds", "path")]
"""The columns of the models table shown in the report."""


def write_csv(frame: pd.DataFrame, path: PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_html(frame: pd.DataFrame, path: PathLike, *, digits: int = 4) -> None:
    """``frame`` as a plain HTML table (numbers to ``digits`` significant digits), for the Snakemake report."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}g}", na_rep="",
                                           border=0))


def pair_verdict(record: dict[str, Any]) -> str:
    """Whether both networks of a pair trained (:func:`permlmc.training.verdict.training_verdict` of each endpoint's
    sidecar): the worse of the two verdicts, ``""`` where an endpoint has no sidecar with final metrics."""
    verdicts = []
    for key in ("model_a", "model_b"):
        if not record.get(key):
            return ""
        sidecar = Path(str(record[key])).with_suffix(".json")
        meta = read_json(sidecar) if sidecar.is_file() else {}
        if "final" not in meta or "architecture" not in meta:
            return ""
        verdicts.append(training_verdict(meta)[0])
    return max(verdicts, key=VERDICTS.index)


def barrier_tables(paths: Iterable[PathLike]) -> dict[str, pd.DataFrame]:
    """``barriers``, ``curves`` and ``sa_traces`` tables from ``barrier.json`` files; ``trained`` says whether both
    networks of the pair trained (:func:`pair_verdict`)."""
    barriers: list[dict[str, Any]] = []
    curves: list[pd.DataFrame] = []
    traces: list[dict[str, Any]] = []
    for path in paths:
        record = read_pair_result(path)
        labels = {key: record.get(key, "") for key in LABELS}
        trained = pair_verdict(record)
        for bn_mode, split, metric, value in barrier_entries(record):
            barriers.append({**labels, "bn_mode": bn_mode, "split": split, "metric": metric,
                             "barrier": value["sup"], "barrier_mid": value["mid"],
                             "search_seconds": record["search_seconds"], "recovery": record.get("recovery"),
                             "path": str(path), "trained": trained})
        curves.append(read_curve(record).assign(**labels)[CURVE_COLUMNS])
        if record.get("algorithm", record.get("method")) == "sa":
            log = read_json(Path(record["permutation"]).with_suffix(".json")).get("log", [])
            traces.extend({**labels, **{k: e[k] for k in TRACE_COLUMNS[len(LABELS):]}}
                          for e in log if e.get("event") == "step")
    return {
        "barriers": pd.DataFrame(barriers, columns=BARRIER_COLUMNS),
        "curves": pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS),
        "sa_traces": pd.DataFrame(traces, columns=TRACE_COLUMNS),
    }


def model_table(paths: Iterable[PathLike]) -> pd.DataFrame:
    """One row per checkpoint (trained seeds and permuted copies) from ``model.json`` sidecars, with whether it
    trained (``trained``: yes, short or no, and ``trained_why``; :mod:`permlmc.training.verdict`)."""
    rows = []
    for path in paths:
        meta = read_json(path)
        arch = meta["architecture"]
        trained, why = training_verdict(meta)
        rows.append({
            "dataset": meta["dataset"]["name"], "arch": arch["arch"], "depth": arch["depth"], "width": arch["width"],
            "kind": meta.get("kind", "real"), "seed": meta["seed"], "copy": meta.get("copy", ""),
            "epochs": meta["epochs"], "steps": meta["steps"], "stopped_by": meta["stopped_by"], **meta["final"],
            "wall_seconds": meta.get("wall_seconds", ""), "path": str(Path(path).with_suffix(".safetensors")),
            "trained": trained, "trained_why": why,
        })
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def row_table(paths: Iterable[PathLike]) -> pd.DataFrame:
    """The ``rows`` of study JSON files (all-pairs, theorem, group search, ensembles) as one table."""
    rows = [{**row, "path": str(path)} for path in paths for row in read_json(path)["rows"]]
    return pd.DataFrame(rows)


def _worst(verdicts: pd.Series) -> str:
    """The worst :data:`~permlmc.artifacts.trained.VERDICTS` among ``verdicts`` (``""`` where none is known)."""
    known = [v for v in verdicts.fillna("").astype(str) if v in VERDICTS]
    return max(known, key=VERDICTS.index) if known else ""


def method_summary(barriers: pd.DataFrame, *, split: str = "train", bn_mode: str = "interpolate") -> pd.DataFrame:
    """One row per (network, kind, method): mean loss barrier (Eq. 1), mean midpoint error barrier, mean search
    wall time and planted-recovery fraction over the pairs, and ``trained``: the worst verdict of their networks
    (a mean over pairs that did not train is no barrier); ``gap_to_exact`` is the midpoint error barrier minus
    that of ``brute_force`` (the exact minimiser of SA's energy) where the network has it."""
    rows = barriers[(barriers["split"] == split) & (barriers["bn_mode"] == bn_mode)]
    if "trained" not in rows.columns:  # tables written before the column existed
        rows = rows.assign(trained="")
    keys = ["dataset", "arch", "depth", "width", "kind", "method"]
    loss = rows[rows["metric"] == "loss"].groupby(keys).agg(
        loss_barrier=("barrier", "mean"), search_seconds=("search_seconds", "mean"),
        recovery=("recovery", "mean"), pairs=("barrier", "count"), trained=("trained", _worst))
    error = rows[rows["metric"] == "error"].groupby(keys).agg(error_barrier_mid=("barrier_mid", "mean"))
    summary = loss.join(error).reset_index()
    exact = summary[summary["method"] == "brute_force"].set_index(keys[:-1])["error_barrier_mid"]
    reference = summary.set_index(keys[:-1]).index.map(lambda key: exact.get(key, float("nan")))
    return summary.assign(gap_to_exact=summary["error_barrier_mid"].to_numpy() - reference.to_numpy(dtype=float))
