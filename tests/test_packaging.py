"""The package as users install it: the conda environment of `snakemake --sdm conda` asks for what pyproject.toml
asks for, and every dependency is a range, not an exact pin."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_the_conda_environment_lists_the_package_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((REPO / "envs" / "lmc.yaml").read_text())
    pip = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert [p for p in pip if not p.startswith("-e")] == project["dependencies"]


def test_no_dependency_is_pinned_exactly() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = [*project["dependencies"], *(r for extra in extras for r in extra)]
    assert not [r for r in requirements if "==" in r]
