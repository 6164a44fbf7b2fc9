"""Reading, filtering and aggregating the tidy tables: the one place every figure selects its rows.

Tables are ``barriers``, ``curves``, ``models`` and ``sa_traces`` (see :mod:`permlmc.artifacts.tables`); an absent or
empty table reads as an empty frame, a non-empty one lacking a column a figure reads is a schema error.

Options shared by the figures:

- ``split`` (``train``/``test``, default ``train``), ``metric`` (``loss``/``error``, default ``error``) and
  ``value`` (``barrier`` = Eq. 1's sup over alpha, ``barrier_mid`` = its value at alpha = 1/2, default
  ``barrier_mid``): by default the paper's plotted quantity (:data:`DEFAULT_METRIC`);
- ``bn_mode`` (``interpolate``/``reset``/``repair``, default ``interpolate``, the paper's behaviour): one
  figure never mixes BatchNorm modes; networks without BatchNorm only have ``interpolate`` rows;
- ``depth`` / ``width``: the depth a width study fixes and the width a depth study fixes, either one int or
  a mapping ``{arch: int}`` (the workflow passes the latter); absent, each arch's tables decide;
- optional label filters ``dataset``, ``arch``, ``residual`` (a value or a list of values).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from permlmc.artifacts import tables as written
from permlmc.barrier import BN_MODES
from permlmc.plotting import palette

__all__ = [
    "BARRIER_READ",
    "BN_MODES",
    "CONFIG",
    "CURVE_READ",
    "KINDS",
    "METHOD_ORDER",
    "METRICS",
    "MODEL_READ",
    "TRACE_READ",
    "SPLITS",
    "Study",
    "arch_setting",
    "barrier_rows",
    "batchnorm_configs",
    "bn_mode_note",
    "bn_mode_option",
    "choice",
    "filter_labels",
    "mean_sd",
    "method_option",
    "read_table",
    "select_bn_mode",
    "series_keys",
    "studies",
]

CONFIG = ["dataset", "arch", "depth", "width"]
"""The columns naming one network configuration."""

OPTIONAL_COLUMNS = ("algorithm", "search_seconds", "recovery", "path", "trained")
"""Columns of the written tables that a figure asks for only where it uses them (a table made without them still
draws): the others are what every figure may read."""
BARRIER_READ = [c for c in written.BARRIER_COLUMNS if c not in OPTIONAL_COLUMNS]
"""The columns of ``barriers.csv`` (:data:`permlmc.artifacts.tables.BARRIER_COLUMNS`) the figures read."""
CURVE_READ = [c for c in written.CURVE_COLUMNS if c not in OPTIONAL_COLUMNS]
MODEL_READ = [c for c in written.MODEL_COLUMNS
              if c in (*CONFIG, "kind", "seed", "train_loss", "train_error", "test_loss", "test_error")]
TRACE_READ = [c for c in written.TRACE_COLUMNS if c not in OPTIONAL_COLUMNS and c not in ("method", "residual")]

_NUMERIC = {
    "depth", "width", "seed", "barrier", "barrier_mid", "alpha", "value", "search_seconds", "recovery",
    "train_loss", "train_error", "test_loss", "test_error", "step", "temperature", "energy", "best_energy",
    "models", *(f"{prefix}{metric}_barrier{mid}" for prefix in ("", "indirect_") for metric in ("loss", "error")
                for mid in ("", "_mid")),
}  # fmt: skip

SPLITS = ("train", "test")
METRICS = ("loss", "error", "loss_temperature_scaled")
VALUES = ("barrier", "barrier_mid")
DEFAULT_METRIC, DEFAULT_VALUE = "error", "barrier_mid"
"""What a barrier figure shows unless told otherwise: the paper's plotted quantity, the error (accuracy) barrier at
alpha = 1/2 (§2.1 allows any loss, "e.g. train or test error"; footnote 3: "we report the barrier value at
alpha = 1/2"; its code takes mean endpoint accuracy minus midpoint accuracy). ``loss`` and the sup over alpha
(Eq. 1, ``barrier``) are options."""
KINDS = ("real", "model")
METHOD_ORDER = (
    "none", "weight_matching", "sa", "activation_matching", "functional_difference", "ste", "brute_force", "sa1",
    "sa2",
)
"""Search methods in the order figures list them: before search, the paper's two searches, then the others."""


COMPUTE_OPTIONS = ("steps", "max_iter", "examples")
"""Search options that set a search's compute: a method variant overriding one (``sa-steps100``) is a point of a
compute sweep; other variants (``weight_matching-statistics0``) are methods of their own."""


def compute_variant(method: str) -> bool:
    """Whether ``method`` is a variant overriding one of :data:`COMPUTE_OPTIONS` (``sa-steps100``, not ``sa``)."""
    _, separator, override = method.partition("-")
    return bool(separator) and override.rstrip("0123456789") in COMPUTE_OPTIONS


def read_table(
    tables: Mapping[str, pd.DataFrame], name: str, columns: Sequence[str], rerun: str | None = None
) -> pd.DataFrame:
    """The table ``name`` with numeric columns as numbers and every other listed column as text ('' for NaN).
    A table lacking a listed column is an error; ``rerun`` names the rule whose rows an earlier version wrote."""
    frame = tables.get(name)
    if frame is None or frame.empty:
        frame = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        hint = f": its rows come from an earlier version; rerun them with `snakemake -R {rerun}`" if rerun else ""
        raise ValueError(f"table {name!r} lacks columns {missing}; it has {list(frame.columns)}{hint}")
    frame = frame.copy()
    for column in columns:
        if column in _NUMERIC:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        else:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


def choice(options: Mapping[str, Any], key: str, default: str, allowed: Sequence[str]) -> str:
    """The option ``key`` (one of ``allowed``; absent or None: ``default``); anything else raises ``ValueError``."""
    value = options.get(key)
    value = default if value is None else value
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"option {key}={value!r} is not one of {list(allowed)}")
    return value


def filter_labels(frame: pd.DataFrame, options: Mapping[str, Any], keys: Iterable[str]) -> pd.DataFrame:
    """Keep rows matching the optional label options (``dataset``, ``arch``, ``residual``, ...)."""
    for key in keys:
        wanted = options.get(key)
        if wanted is None:
            continue
        allowed = [str(v) for v in wanted] if isinstance(wanted, list | tuple) else [str(wanted)]
        frame = frame[frame[key].isin(allowed)]
    return frame


def bn_mode_option(options: Mapping[str, Any]) -> str:
    return choice(options, "bn_mode", "interpolate", BN_MODES)


def select_bn_mode(frame: pd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """Rows of the one BatchNorm mode the figure shows (option ``bn_mode``, default ``interpolate``)."""
    return frame[frame["bn_mode"] == bn_mode_option(options)]


def batchnorm_configs(barriers: pd.DataFrame) -> pd.DataFrame:
    """(dataset, arch, depth, width) of the networks with BatchNorm: those with a mode besides ``interpolate``."""
    return barriers.loc[barriers["bn_mode"] != "interpolate", CONFIG].drop_duplicates()


def bn_mode_note(tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any], table: str = "barriers") -> str:
    """``BatchNorm statistics: <mode>`` when ``table`` holds BatchNorm networks, else ''."""
    if batchnorm_configs(read_table(tables, table, [*CONFIG, "bn_mode"])).empty:
        return ""
    return f"BatchNorm statistics: {bn_mode_option(options)}"


def method_option(options: Mapping[str, Any]) -> list[str] | None:
    """The ``methods`` option as a list of names, or None (every method present)."""
    requested = options.get("methods")
    return None if requested is None else [str(m) for m in requested]


def barrier_rows(
    tables: Mapping[str, pd.DataFrame], options: Mapping[str, Any], *, every_bn_mode: bool = False,
    columns: Sequence[str] = BARRIER_READ, variants: bool = False,
) -> tuple[pd.DataFrame, str]:
    """Barrier rows of the chosen split/metric/BatchNorm mode, the chosen value copied into column ``y``.

    Returns the rows and their axis label. ``every_bn_mode`` keeps all modes (only for comparing them).
    Method variants (``sa-steps100``: one option overridden, for the compute sweeps) are dropped unless
    ``variants`` is true or the ``methods`` option names them.
    """
    split = choice(options, "split", "train", SPLITS)
    metric = choice(options, "metric", DEFAULT_METRIC, METRICS)
    value = choice(options, "value", DEFAULT_VALUE, VALUES)
    frame = read_table(tables, "barriers", columns)
    frame = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    if not variants:
        named = method_option(options) or []
        frame = frame[~frame["method"].str.contains("-", regex=False) | frame["method"].isin(named)]
    frame = filter_labels(frame, options, ["dataset", "arch", "residual"])
    if not every_bn_mode:
        frame = select_bn_mode(frame, options)
    frame = frame.assign(y=frame[value]).dropna(subset=["y", "depth", "width"])
    return frame, palette.metric_label(split, metric, value)


def arch_setting(options: Mapping[str, Any], key: str, arch: str) -> int | None:
    """Option ``key`` for ``arch``: one int for every arch or a mapping ``{arch: int}``."""
    value = options.get(key)
    if isinstance(value, Mapping):
        value = value.get(arch)
    return None if value is None else int(value)


def _most_covered(frame: pd.DataFrame, fixed: str, axis: str, prefer_largest: bool) -> int | None:
    """The value of ``fixed`` present with the most distinct ``axis`` values (at least two)."""
    counts = frame.groupby(fixed)[axis].nunique()
    counts = counts[counts >= 2]
    if counts.empty:
        return None
    best = counts[counts == counts.max()].index
    return int(best.max() if prefer_largest else best.min())


@dataclass(frozen=True)
class Study:
    """One arch's width study (``axis="width"``: widths at ``fixed`` depth) or depth study (depths at
    ``fixed`` width)."""

    arch: str
    axis: str
    fixed: int

    @property
    def fixed_axis(self) -> str:
        return "depth" if self.axis == "width" else "width"

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["arch"] == self.arch) & (frame[self.fixed_axis] == self.fixed)]

    @property
    def caption(self) -> str:
        return f"vs {self.axis} ({self.fixed_axis} {self.fixed})"


def studies(frame: pd.DataFrame, options: Mapping[str, Any], axis: str) -> list[Study]:
    """Per arch in ``frame``, its study along ``axis`` (``width`` or ``depth``).

    The fixed depth (width study) or width (depth study) is the arch's ``depth``/``width`` option; absent,
    the one present with the most widths (smallest such depth) or depths (largest such width), and an arch
    with a single width (depth) has no study.
    """
    fixed_axis = "depth" if axis == "width" else "width"
    found: list[Study] = []
    for arch in sorted(frame["arch"].unique()):
        fixed = arch_setting(options, fixed_axis, arch)
        if fixed is None:
            fixed = _most_covered(frame[frame["arch"] == arch], fixed_axis, axis, prefer_largest=axis == "depth")
        if fixed is not None:
            found.append(Study(arch, axis, fixed))
    return found


def studies_with_rows(frame: pd.DataFrame, options: Mapping[str, Any], axis: str) -> list[tuple[Study, pd.DataFrame]]:
    """Each of :func:`studies` along ``axis`` with its rows of ``frame``, leaving out a study without any."""
    found = [(study, study.rows(frame)) for study in studies(frame, options, axis)]
    return [(study, rows) for study, rows in found if not rows.empty]


def studies_and_datasets(
    frame: pd.DataFrame, options: Mapping[str, Any], axis: str
) -> tuple[list[tuple[Study, pd.DataFrame]], list[str]]:
    """:func:`studies_with_rows` along ``axis``, and the datasets of ``frame`` in the order that gives each its colour
    in every panel (:func:`rows_by_dataset`)."""
    return studies_with_rows(frame, options, axis), sorted(frame["dataset"].unique())


def rows_by_dataset(frame: pd.DataFrame, datasets: Sequence[str]) -> Iterator[tuple[int, str, pd.DataFrame]]:
    """(index in ``datasets``, the dataset, its rows of ``frame``) for each of ``datasets`` with rows in ``frame``:
    the index picks the dataset's colour or marker, the same in every panel of a figure."""
    for index, dataset in enumerate(datasets):
        part = frame[frame["dataset"] == dataset]
        if not part.empty:
            yield index, dataset, part


def series_keys(frame: pd.DataFrame, methods: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """Distinct (method, sa_schedule) pairs, ``none`` first, then in the order of ``methods`` (default
    :data:`METHOD_ORDER`), then any other method by name."""
    keys = {(str(m), str(s)) for m, s in zip(frame["method"], frame["sa_schedule"], strict=True)}
    order = {m: i for i, m in enumerate(METHOD_ORDER if methods is None else methods)}
    return sorted(keys, key=lambda k: (k[0] != "none", order.get(k[0], len(order)), k))


def mean_sd(frame: pd.DataFrame, by: str | list[str], y: str = "y") -> pd.DataFrame:
    """Mean, standard deviation (0 for one row) and count of ``y`` per ``by``, sorted by ``by``."""
    grouped = frame.groupby(by)[y].agg(["mean", "std", "count"]).reset_index().sort_values(by)
    grouped["std"] = grouped["std"].fillna(0.0)
    return grouped
