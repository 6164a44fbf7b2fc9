"""Shared fixtures: every registered model at a small width, on tiny synthetic inputs."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from permlmc.model_names import split_model_name
from permlmc.models import MODELS, Architecture, model_names

INPUT_SHAPE = (1, 8, 8)

if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker process: workers side by side fill the cores
    torch.set_num_threads(1)


LONG_FIRST = (
    "test_workflow.py", "test_user_models.py", "test_slurm.py", "test_interrupted_run.py",  # whole workflow runs
    "test_all_pairs.py",  # a short file: it waits behind the SLURM file (below)
    "test_figures.py", "test_tracing.py", "test_stacked_curves.py", "test_search_contract.py", "test_group_search.py",
    "test_resume.py", "test_search_methods.py",  # the unit files of 10 CPU-seconds and more
)
"""The files that take longest, started first in this order (``make test`` keeps it, ``--no-loadscope-reorder``): the
many short files then fill in at the end, instead of one long file running alone while the other workers idle.
pytest-xdist hands a worker its next file once its current file has two tests or fewer left: the SLURM file (two
tests, minutes) takes the killed-run file at the start and, once its first test is done, the next one in this order,
which then waits for both; a short file stands there, not one of the long unit files."""


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: unknown where it is not installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker more than pytest-xdist would start (one per core), ``--maxprocesses`` still capping it.
    The files of :data:`LONG_FIRST` spend part of their time waiting (on a SLURM scheduler's polling, a cluster's
    start, a killed run's state), and the extra worker's tests fill those waits. PYTEST_XDIST_AUTO_NUM_WORKERS, when
    set, is taken as it is."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from xdist.plugin import pytest_xdist_auto_num_workers as per_core

    return per_core(config) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of :data:`LONG_FIRST` first, the others as collected; tests marked ``gpu`` are skipped where no
    CUDA device is available (bench/gpu_suite.sh runs them)."""
    items.sort(key=lambda item: LONG_FIRST.index(item.path.name) if item.path.name in LONG_FIRST else len(LONG_FIRST))
    if not torch.cuda.is_available():
        for item in items:
            if item.get_closest_marker("gpu") is not None:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture
def one_thread():
    """Tiny tensors: a second thread only adds contention on a shared machine (``pytestmark =
    pytest.mark.usefixtures("one_thread")``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_architectures() -> list[Architecture]:
    """Every registered model name (each family with each of its norms) at each of its family's example depths."""
    return [
        Architecture(name, depth, MODELS[split_model_name(name)[0]].example_width, INPUT_SHAPE, 10)
        for name in model_names()
        for depth in MODELS[split_model_name(name)[0]].example_depths
    ]


@pytest.fixture(params=small_architectures(), ids=lambda a: a.name)
def arch(request: pytest.FixtureRequest) -> Architecture:
    return request.param


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randn(32, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every worker process of the session sees (the parent of their temporary folders under xdist)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session")
def shipped_plan(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """What `snakemake -n` prints for a shipped config file (a path relative to the repository), made once per
    session and config, also across worker processes (the first to take a config's lock dry-runs it)."""
    from tests.workflow_runs import REPO, dry_run

    folder = _shared_root(tmp_path_factory) / "shipped_plans"
    folder.mkdir(exist_ok=True)

    def plan(configfile: str) -> str:
        name = configfile.replace("/", "_")
        out = folder / f"{name}.txt"
        with open(folder / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not out.exists():
                workdir = folder / name
                shutil.rmtree(workdir, ignore_errors=True)
                workdir.mkdir()
                text = dry_run(workdir, yaml.safe_load((REPO / configfile).read_text()))
                (folder / f"{name}.part").write_text(text)
                (folder / f"{name}.part").rename(out)
        return out.read_text()

    return plan


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the tiny workflow config (tests/workflow_runs.py), made once per session, also when
    pytest-xdist runs the suite in several worker processes (they share the parent of their temporary folders,
    and the first to get the lock makes the run). Tests only read it or dry-run against it; a test that runs jobs
    works in a directory of its own."""
    from tests.workflow_runs import TINY, snakemake

    root = _shared_root(tmp_path_factory)
    workdir, done = root / "tiny_run", root / "tiny_run.done"
    with open(root / "tiny_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            snakemake(workdir, TINY, "--cores", "2")
            done.touch()
    return workdir
