"""The config schemas name what the library has: every enumeration and name pattern in them equals (or, where
the workflow narrows it on purpose, lies within) the library registry it copies. The workflow does not import the
library (its rules run in whatever environment a job gets), so the copies are pinned here instead."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from permlmc.barrier import BN_MODES
from permlmc.data.readers import READERS
from permlmc.evaluation import METRICS
from permlmc.models import MODELS, RESIDUAL_MODES, model_names
from permlmc.plotting import selection
from permlmc.search import SEARCHES
from permlmc.search.annealing.schedule import SCHEDULES as SA_SCHEDULES
from permlmc.search.group import GROUP_SEARCHES
from permlmc.training.loop import OPTIMIZERS, TrainConfig
from permlmc.training.loop import SCHEDULES as LR_SCHEDULES

SCHEMAS = Path(__file__).resolve().parents[1] / "workflow" / "schemas"


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """(dotted path, schema node) of every mapping in a schema, depth first."""
    if isinstance(node, dict):
        yield path, node
        for key, child in node.items():
            yield from _nodes(child, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _nodes(child, f"{path}[{i}]")


def _all_nodes() -> dict[str, dict]:
    return {f"{file.name}:{path}": node for file in sorted(SCHEMAS.glob("*.schema.yaml"))
            for path, node in _nodes(yaml.safe_load(file.read_text()))}


def _alternatives(pattern: str) -> set[str]:
    """The names of a ``^(a|b|c)(...)?$`` pattern."""
    match = re.match(r"\^\(([a-z0-9_|]+)\)", pattern)
    assert match, f"pattern {pattern!r} does not start with a group of names"
    return set(match[1].split("|"))


def _named(key: str) -> list[tuple[str, dict]]:
    """Nodes that are the schema of a property called ``key``."""
    return [(path, node) for path, node in _all_nodes().items() if path.rsplit(".", 1)[-1] == key]


def test_the_schema_files_are_the_ones_the_workflow_validates_with() -> None:
    listed = re.search(r"SCHEMAS = \[(.*?)\]", (SCHEMAS.parent / "rules" / "validate.smk").read_text())[1]
    files = {name.strip(' "') + ".schema.yaml" for name in listed.split(",")}
    assert files | {"definitions.schema.yaml"} == {file.name for file in SCHEMAS.glob("*.schema.yaml")}


def test_dataset_and_method_patterns_name_the_registries() -> None:
    nodes = _all_nodes()
    assert _alternatives(nodes["definitions.schema.yaml:definitions.dataset"]["pattern"]) == set(READERS)
    assert _alternatives(nodes["definitions.schema.yaml:definitions.method"]["pattern"]) == set(SEARCHES)
    theorem = nodes["studies.schema.yaml:properties.theorem.properties.method"]["pattern"]
    assert _alternatives(theorem) == {name for name in SEARCHES if name in ("none", "weight_matching")}  # weights only
    for path, node in nodes.items():
        if "propertyNames" in node and not path.endswith("properties.models"):  # `models` is keyed by user names
            assert set(node["propertyNames"]["enum"]) == set(READERS), path


@pytest.mark.parametrize(("key", "registry"), [
    ("arch", set(model_names())),
    ("bn_modes", set(BN_MODES)),
    ("bn_mode", set(BN_MODES)),
    ("residual", set(RESIDUAL_MODES)),
    ("schedule", set(LR_SCHEDULES) | set(SA_SCHEDULES)),
    ("optimizer", set(OPTIMIZERS)),
])
def test_every_enumeration_of_a_key_is_its_registry(key: str, registry: set[str]) -> None:
    found = _named(key)
    assert found, f"no property {key!r} in the schemas"
    for path, node in found:
        if "$ref" in node:
            continue  # the definition it names is checked as a node of its own
        if "anyOf" in node:  # a registered name or a network of the user's own (declared under `models`)
            node = next(option for option in node["anyOf"] if "enum" in option)
        values = set(node.get("enum") or node.get("items", {}).get("enum", ()))
        if key == "schedule":  # training protocols take a learning-rate schedule, SA an annealing one
            registry = set(SA_SCHEDULES) if ".sa." in path else set(LR_SCHEDULES)
        assert values == registry, path


def test_metric_enumerations_are_the_librarys() -> None:
    for path, node in _named("metric"):
        expected = selection.METRICS if path.startswith("config.schema.yaml") else METRICS  # figures vs searches
        assert set(node["enum"]) == set(expected), path
    assert set(_all_nodes()["config.schema.yaml:properties.figures.properties.value"]["enum"]) == set(selection.VALUES)


def test_sections_name_registered_families_and_methods() -> None:
    nodes = _all_nodes()
    protocols = nodes["training.schema.yaml:properties.training.properties"]
    assert set(protocols) == set(MODELS)
    user_protocol = nodes["config.schema.yaml:properties.models.additionalProperties.properties.protocol"]
    assert set(user_protocol["enum"]) == set(MODELS)
    options = set(nodes["search.schema.yaml:properties.search.properties"]) - {"methods", "seed", "residual"}
    assert options <= set(SEARCHES)
    group_methods = set(nodes["studies.schema.yaml:properties.groups.properties.methods"]["items"]["enum"])
    assert set(GROUP_SEARCHES) <= group_methods and group_methods - set(GROUP_SEARCHES) <= set(SEARCHES)


def test_every_training_protocol_is_a_training_config_of_the_library() -> None:
    nodes = _all_nodes()
    keys = set(nodes["definitions.schema.yaml:definitions.training"]["properties"])
    assert keys == set(TrainConfig.__dataclass_fields__)  # a dataset's overrides may set every key
    for family, section in nodes["training.schema.yaml:properties.training.properties"].items():
        properties = {k: v for k, v in section["properties"].items() if k != "datasets"}
        assert set(properties) == keys, family
        defaults = {k: v["default"] for k, v in properties.items() if "default" in v}
        TrainConfig.from_dict(defaults)  # the section's defaults make a valid protocol
