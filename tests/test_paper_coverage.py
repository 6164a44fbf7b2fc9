"""docs/paper_coverage.md stays true: one row per figure and table of the paper, and every figure a row names is
registered and scheduled by the dry run of every config that row names."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from tests.workflow_runs import REPO

from permlmc.plotting import FIGURES

pytestmark = pytest.mark.workflow

PAGE = REPO / "docs" / "paper_coverage.md"
PAPER_FIGURES, PAPER_TABLES = 22, 3


def _rows() -> list[list[str]]:
    lines = [line for line in PAGE.read_text().splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]  # below header and rule


def _numbers(label: str, kind: str) -> set[int]:
    """Figure (or table) numbers a row's first cell names: ``Fig. 6 right, 7, 11`` -> {6, 7, 11}; ``Figs. 19–22``."""
    found: set[int] = set()
    for part in re.findall(rf"\b{kind}s?\.? ([0-9a-z,–\- ]+)", label):
        for token in re.findall(r"\d+(?:–\d+)?", part):
            low, _, high = token.partition("–")
            found |= set(range(int(low), int(high or low) + 1))
    return found


def test_every_paper_figure_and_table_has_a_row() -> None:
    labels = [row[0] for row in _rows()]
    assert set().union(*(_numbers(label, "Fig") for label in labels)) == set(range(1, PAPER_FIGURES + 1))
    assert set().union(*(_numbers(label, "Table") for label in labels)) == set(range(1, PAPER_TABLES + 1))


def _named(cell: str, pattern: str) -> list[str]:
    return re.findall(rf"`({pattern})`", cell)


CASES = [(figure, config) for row in _rows()
         for figure in _named(row[2], "[a-z_]+") if figure in FIGURES
         for config in _named(row[3], r"config[a-z_/]*\.yaml")]


def test_rows_name_registered_figures() -> None:
    for row in _rows():
        for name in _named(row[2], "[a-z_]+"):
            assert name in FIGURES, f"{row[0]}: {name!r} is not a registered figure"
    assert CASES, "no row names a figure and a config"


@pytest.mark.parametrize("config", sorted({config for _, config in CASES}))
def test_each_config_draws_the_figures_its_rows_name(config: str, shipped_plan: Callable[[str], str]) -> None:
    drawn = set(re.findall(r"results/figures/(?:train/|test/)?([a-z_]+)\.", shipped_plan(config)))  # a dry run's
    missing = sorted({figure for figure, c in CASES if c == config} - drawn)
    assert not missing, f"{config} does not draw {missing}, which docs/paper_coverage.md credits to it"
