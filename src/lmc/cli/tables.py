"""Table verbs: gather the JSON sidecars of many jobs into tidy CSV tables (rules ``tabulate_barriers``,
``tabulate_models``, ``tabulate_study``). They import no torch."""

from __future__ import annotations

import argparse
import os

from lmc.artifacts.tables import barrier_tables, method_summary, model_table, row_table, write_csv
from lmc.cli.verb import Verb

PathLike = str | os.PathLike[str]


def barrier_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--barriers", required=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--sa-traces", required=True)
    p.add_argument("--methods", default=None, help="also write the per-method summary (barrier, time, recovery)")


def run_tabulate_barriers(
    inputs: list[PathLike], barriers: PathLike, curves: PathLike, sa_traces: PathLike, methods: PathLike | None
) -> None:
    tables = barrier_tables(inputs)
    for name, out in (("barriers", barriers), ("curves", curves), ("sa_traces", sa_traces)):
        write_csv(tables[name], out)
    if methods:
        write_csv(method_summary(tables["barriers"]), methods)


def gather_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--out", required=True)


def run_tabulate_models(inputs: list[PathLike], out: PathLike) -> None:
    write_csv(model_table(inputs), out)


def run_tabulate_study(inputs: list[PathLike], out: PathLike) -> None:
    write_csv(row_table(inputs), out)


VERBS = {
    "tabulate-barriers": Verb("Gather barrier.json files into tidy CSV tables.", barrier_arguments,
                              run_tabulate_barriers, tensors=False),
    "tabulate-models": Verb("Gather model.json sidecars into one CSV table.", gather_arguments, run_tabulate_models,
                            tensors=False),
    "tabulate-study": Verb("Gather the rows of study JSON files into one CSV table.", gather_arguments,
                           run_tabulate_study, tensors=False),
}
