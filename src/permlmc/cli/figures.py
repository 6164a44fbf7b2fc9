"""The figure verb, ``plot-figures`` (rules ``plot_figures``, ``plot_split_figures``): figures from tidy tables,
each table read once. It imports no torch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from permlmc.cli.verb import Verb, json_object
from permlmc.plotting import FIGURES, draw


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--figure", dest="figures", metavar="FIGURE", nargs="+", required=True,
                   help="figure names (permlmc.plotting.FIGURES)")
    p.add_argument("--tables", nargs="+", required=True, help="CSV files; each is known by its file stem")
    p.add_argument("--options", type=json_object, default={})
    p.add_argument("--out", dest="outs", metavar="OUT", nargs="+", required=True,
                   help="one image path per figure, in the same order")


def run_plot(figures: list[str], tables: list[str], options: dict[str, Any], outs: list[str]) -> None:
    unknown = [name for name in figures if name not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {sorted(FIGURES)}")
    if len(outs) != len(figures):
        raise ValueError(f"give one --out per --figure: {len(figures)} figures, {len(outs)} paths")
    frames = {Path(p).stem: pd.read_csv(p) for p in tables}
    for name, out in zip(figures, outs, strict=True):
        draw(name, frames, Path(out), options)


VERBS = {
    "plot-figures": Verb("Draw figures from tidy tables (read once).", arguments, run_plot, tensors=False),
}
