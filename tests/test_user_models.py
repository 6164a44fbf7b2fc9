"""Networks of the user's own in the workflow (`models:`): trained under a named protocol or taken from the user's
checkpoints, their specs derived and verified, and every job of a registered network run for them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from tests.workflow_runs import REPO, job_counts, planned_jobs, planning_error, snakemake

from permlmc.cli.spec import run_check_spec
from permlmc.models import Architecture, build_model, permutation_spec
from permlmc.models.user import FactoryError, build_network

FACTORY = '''
import torch
from torch import nn


class Swish(nn.Module):  # an op the tracer does not know: declared entrywise in the config
    def forward(self, x):
        return x * torch.special.expit(x)


class Tiny(nn.Module):
    def __init__(self, width, in_channels, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width)
        self.act = Swish()
        self.head = nn.Linear(width * 4 * 4, num_classes)

    def forward(self, x):
        h = self.act(self.norm(self.conv(x)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 4), 1))


def tiny(width=4, in_channels=1, num_classes=10):
    return Tiny(width, in_channels, num_classes)
'''

USER = {
    "datasets": ["digits"],
    "models": {
        "tiny": {"factory": "nets:tiny", "protocol": "cnn", "trace": {"entrywise": ["Swish"]}},
        "mine": {"factory": "nets:tiny", "kwargs": {"width": 3}, "protocol": "cnn", "trace": {"entrywise": ["act"]},
                 "checkpoints": {"digits": ["own/seed1.pt", "own/seed2.pt"]}},
    },
    "studies": {"width": {"arch": "tiny", "depths": [1], "widths": [6]},
                "own": {"arch": "mine", "depths": [1], "widths": [3]}},
    "seeds": 2,
    "permuted_copies": 2,
    "training": {"cnn": {"max_epochs": 2, "batch_size": 64}},
    "search": {"methods": ["none", "weight_matching"]},
    "barrier": {"alphas": 5, "bn_modes": ["interpolate", "reset"], "bn_batches": 2},
    "figures": {"splits": ["train"]},
}


def _workdir(path: Path) -> Path:
    """A working directory holding the factory module `nets` and two checkpoints of `mine` saved by torch.save."""
    (path / "nets.py").write_text(FACTORY)
    (path / "own").mkdir()
    namespace: dict = {}
    exec(FACTORY, namespace)  # the module's code, without importing it as `nets` here
    for seed in (1, 2):
        torch.manual_seed(seed)
        torch.save(namespace["tiny"](width=3).state_dict(), path / "own" / f"seed{seed}.pt")
    return path


@pytest.fixture(scope="module")
def user_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = _workdir(tmp_path_factory.mktemp("user_models"))
    snakemake(workdir, USER, "--cores", "2")
    return workdir


@pytest.mark.workflow
def test_user_networks_run_like_registered_ones(user_run: Path) -> None:
    models = pd.read_csv(user_run / "results" / "tables" / "models.csv")
    assert set(zip(models["arch"], models["width"], strict=True)) == {("tiny", 6), ("mine", 3)}
    assert set(models.loc[models["arch"] == "mine", "stopped_by"]) == {"imported"}
    barriers = pd.read_csv(user_run / "results" / "tables" / "barriers.csv")
    assert set(barriers["arch"]) == {"tiny", "mine"} and set(barriers["method"]) == {"none", "weight_matching"}
    assert set(barriers["bn_mode"]) == {"interpolate", "reset"}
    lifted = barriers[(barriers["kind"] == "model") & (barriers["method"] == "weight_matching")
                      & (barriers["metric"] == "loss")]
    assert lifted["barrier"].abs().max() < 1e-4  # S': permuted copies aligned back exactly
    report = json.loads((user_run / "results" / "digits" / "tiny-d1-w6" / "spec.json").read_text())
    assert report["ok"] and {p["name"] for p in report["permutations"]} == {"conv"}
    assert report["permutations"][0]["units"] == 6  # the width reached the factory
    sidecar = json.loads((user_run / "results" / "digits" / "mine-d1-w3" / "seed1" / "model.json").read_text())
    assert sidecar["architecture"]["factory"] == "nets:tiny" and sidecar["imported_from"]["path"] == "own/seed1.pt"
    assert (user_run / "results" / "figures" / "train" / "bn_modes.png").stat().st_size > 1000  # BatchNorm: reset drawn


@pytest.mark.workflow
def test_a_user_network_adds_its_spec_check_and_no_training_for_imported_seeds(user_run: Path) -> None:
    """The jobs the run planned in its fresh directory (the job stats of its log)."""
    (log,) = (user_run / ".snakemake" / "log").glob("*.snakemake.log")
    jobs = job_counts(log.read_text())
    assert jobs["check_spec"] == 2 and jobs["import_checkpoints"] == 1
    assert jobs["train_seeds_1to2"] == 1  # `tiny` only: `mine` is imported
    assert jobs["search_pairs"] == 2 * 2


BAD_USER_CONFIGS = [
    ({"models": {**USER["models"], "tiny": {"factory": "nets:tiny", "protocol": "cnn"}}},
     "models.tiny", "expit"),  # check-spec's error (the op, without its way out) under the entry's key
    ({"models": {**USER["models"], "mine": {**USER["models"]["mine"], "checkpoints": {"digits": ["own/seed1.pt"]}}}},
     "models.mine.checkpoints.digits", "1 checkpoints for 2 seeds"),
    ({"studies": {"width": {"arch": "tinyy", "depths": [1], "widths": [4]}}},
     "studies.width.arch", "neither a registered model"),
    ({"models": {**USER["models"], "mlp": {"factory": "nets:tiny", "protocol": "cnn"}}}, "models.mlp",
     "registered model"),
    ({"search": {**USER["search"], "residual": "internal"}}, "search.residual", "registered ResNets only"),
]


@pytest.mark.parametrize("change,key,message", BAD_USER_CONFIGS, ids=[k for _, k, _ in BAD_USER_CONFIGS])
def test_a_bad_user_model_fails_before_any_job_naming_the_key(change: dict, key: str, message: str,
                                                                tmp_path: Path) -> None:
    error = planning_error(_workdir(tmp_path), {**USER, **change})
    assert f"config key '{key}'" in error and message in error
    assert not (tmp_path / "results").exists()


BAD_FACTORIES = [  # check-spec's arguments as the workflow builds them from a `models` entry, changed
    ({"model": "nets:huge"}, "has no 'huge'"),
    ({"kwargs": {"depth": 2}}, "rejected its arguments"),
    ({"kwargs": {"width": "4'"}}, "rejected its arguments"),
    ({"kwargs": {"width": 5}, "checkpoints": ["own/seed1.pt"]}, "does not fit Tiny"),
]


@pytest.mark.parametrize("change,message", BAD_FACTORIES, ids=[m for _, m in BAD_FACTORIES])
def test_check_spec_refuses_a_bad_factory_entry_saying_why(change: dict, message: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """What the workflow's check (one `check-spec` per model, before any job) reports under `models.NAME`; run in
    this process, as the workflow's first case above runs it through Snakemake."""
    _workdir(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    arguments = {"model": "nets:tiny", "kwargs": {}, "dataset": None, "input_shape": [1, 8, 8], "depth": 1,
                 "width": 3, "entrywise": ["Swish"], **change}
    with pytest.raises(ValueError, match=re.escape(message)):
        run_check_spec(**arguments)


def test_the_shipped_example_config_plans_every_job(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    config = yaml.safe_load((REPO / "config" / "user_model.yaml").read_text())
    jobs = planned_jobs(tmp_path, config)
    networks = len(config["studies"]["width"]["widths"])
    assert jobs["check_spec"] == networks
    assert jobs["search_pairs"] == networks * len(config["search"]["methods"])


def test_a_user_architecture_builds_its_network_and_derived_spec(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nets.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="expit"):  # Swish is no op the tracer knows
        permutation_spec(Architecture("tiny", 1, 5, (1, 8, 8), 10, "nets:tiny"))
    arch = Architecture("tiny", 1, 5, (1, 8, 8), 10, "nets:tiny", trace={"entrywise": ["Swish"]})
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert build_model(arch).conv.out_channels == 5  # width reached the factory
    spec = permutation_spec(arch)
    assert spec.names == ("conv",) and spec.axes["head.weight"][1][0].block == 16
    with pytest.raises(ValueError, match="registered ResNets only"):
        permutation_spec(arch, "internal")
    with pytest.raises(ValueError, match="not a registered model"):
        Architecture("mlp", 1, 5, (1, 8, 8), 10, "nets:tiny")
    with pytest.raises(FactoryError, match="must read 'package.module:function'"):
        build_network("nets.tiny")
