"""Table verbs: gather the JSON sidecars of many jobs into tidy CSV tables (rules ``tabulate_barriers``,
``tabulate_models``, ``tabulate_study``). They import no torch."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from permlmc.artifacts.tables import (
    MODEL_REPORT_COLUMNS,
    barrier_tables,
    method_summary,
    model_table,
    row_table,
    write_csv,
    write_html,
)
from permlmc.cli.verb import Verb, json_object
from permlmc.types import PathLike


def barrier_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--barriers", required=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--sa-traces", required=True)
    p.add_argument("--methods", default=None, help="also write the per-method summary (barrier, time, recovery)")
    p.add_argument("--methods-html", default=None, help="and the summary as an HTML table (for the report)")


def run_tabulate_barriers(
    inputs: list[PathLike], barriers: PathLike, curves: PathLike, sa_traces: PathLike, methods: PathLike | None,
    methods_html: PathLike | None,
) -> None:
    tables = barrier_tables(inputs)
    for name, out in (("barriers", barriers), ("curves", curves), ("sa_traces", sa_traces)):
        write_csv(tables[name], out)
    if methods or methods_html:
        summary = method_summary(tables["barriers"])
        if methods:
            write_csv(summary, methods)
        if methods_html:
            write_html(summary, methods_html)


def gather_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--out", required=True)


def models_arguments(p: argparse.ArgumentParser) -> None:
    gather_arguments(p)
    p.add_argument("--html", default=None, help="also write the table's main columns as HTML (for the report)")


def run_tabulate_models(inputs: list[PathLike], out: PathLike, html: PathLike | None = None) -> None:
    table = model_table(inputs)
    write_csv(table, out)
    if html:
        write_html(table[MODEL_REPORT_COLUMNS], html)


def run_tabulate_study(inputs: list[PathLike], out: PathLike) -> None:
    write_csv(row_table(inputs), out)


def paper_table_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True, help="one of permlmc.plotting.paper_tables.PAPER_TABLES")
    p.add_argument("--source", required=True, help="the tidy CSV table it is derived from")
    p.add_argument("--options", type=json_object, default={}, help="the figures' options as a JSON object")
    p.add_argument("--out", required=True)
    p.add_argument("--html", default=None, help="also write it as HTML (for the report)")


def run_tabulate_paper_table(table: str, source: PathLike, options: dict[str, Any], out: PathLike,
                             html: PathLike | None = None) -> None:
    """One of the paper's printed tables (Table 2, Table 3) from the tidy table it summarises."""
    from permlmc.plotting.paper_tables import PAPER_TABLES

    if table not in PAPER_TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of {sorted(PAPER_TABLES)}")
    name, derive = PAPER_TABLES[table]
    frame = derive({name: pd.read_csv(source)}, options)
    write_csv(frame, out)
    if html:
        write_html(frame, html)


VERBS = {
    "tabulate-barriers": Verb("Gather barrier.json files into tidy CSV tables.", barrier_arguments,
                              run_tabulate_barriers, tensors=False),
    "tabulate-models": Verb("Gather model.json sidecars into one CSV table.", models_arguments, run_tabulate_models,
                            tensors=False),
    "tabulate-study": Verb("Gather the rows of study JSON files into one CSV table.", gather_arguments,
                           run_tabulate_study, tensors=False),
    "tabulate-paper-table": Verb("Write one of the paper's tables (2: SA scaling, 3: ensembles) from a tidy table.",
                                 paper_table_arguments, run_tabulate_paper_table, tensors=False),
}
