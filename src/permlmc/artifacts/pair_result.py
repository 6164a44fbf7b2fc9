"""A pair's result files, written by the pair jobs and read by the tables, in one place: its curves (``curve.csv``,
one row per BatchNorm mode, alpha, split and metric) and its record (``barrier.json``: the curves' Eq. 1 barriers
per mode, split and metric, the pair's labels and where its numbers come from). Imports no torch: the tables start
without it; and no pandas until a curve is read."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from permlmc.artifacts.files import atomic_path, read_json, write_json
from permlmc.types import PathLike

if TYPE_CHECKING:
    import pandas as pd

CURVE_FIELDS = ("bn_mode", "alpha", "split", "metric", "value")
"""The columns of one pair's ``curve.csv`` (the gathered table ``curves.csv`` adds the pair's labels)."""
CurveRow = tuple[str, float, str, str, float]
"""One point of a curve: (bn_mode, alpha, split, metric, value)."""
Barriers = Mapping[tuple[str, str, str], Mapping[str, float]]
"""(bn_mode, split, metric) -> {"sup": Eq. 1 over the alpha grid, "mid": its value at alpha = 1/2}."""


def write_pair_result(out_json: PathLike, out_curve: PathLike, rows: Iterable[CurveRow], barriers: Barriers,
                      record: Mapping[str, Any]) -> None:
    """``rows`` to ``out_curve``, then ``record`` with the ``barriers`` (nested mode -> split -> metric) and the
    curve's path to ``out_json``; each file written atomically, the record last (a job's finished mark)."""
    with atomic_path(out_curve) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CURVE_FIELDS)
        writer.writerows([mode, alpha, split, metric, repr(value)] for mode, alpha, split, metric, value in rows)
    nested: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for (mode, split, metric), found in barriers.items():
        nested.setdefault(mode, {}).setdefault(split, {})[metric] = dict(found)
    write_json(out_json, {**record, "barriers": nested, "curve": str(out_curve)})


def read_pair_result(path: PathLike) -> dict[str, Any]:
    """A ``barrier.json`` record, as :func:`write_pair_result` wrote it."""
    return read_json(path)


def barrier_entries(record: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Mapping[str, float]]]:
    """(bn_mode, split, metric, {"sup", "mid"}) of every curve of a record."""
    for mode, splits in record["barriers"].items():
        for split, metrics in splits.items():
            for metric, found in metrics.items():
                yield mode, split, metric, found


def read_curve(record: Mapping[str, Any]) -> pd.DataFrame:
    """The curves of a record (:data:`CURVE_FIELDS`)."""
    import pandas as pd  # the tables' side only: a pair job writes its curves without loading pandas

    return pd.read_csv(record["curve"])
