"""The tiny workflow config and how the workflow tests run Snakemake on it.

One finished run of TINY (the session fixture `tiny_run` of conftest.py) serves every test that only reads its
outputs or dry-runs against it: the incremental-rerun tests, the SLURM comparison and the killed-run comparison.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

if TYPE_CHECKING:
    from snakemake.api import WorkflowApi
    from snakemake.settings.types import OutputSettings

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"

TINY = {
    "datasets": ["digits"],
    "studies": {
        "width": {"arch": "mlp", "depths": [1], "widths": [4, 8]},
        "depth": {"arch": "mlp", "depths": [1, 2], "widths": [8]},
    },
    "seeds": 2,
    "permuted_copies": 2,
    "training": {"mlp": {"max_epochs": 2}},
    "search": {"sa": {"steps": 30, "examples": 200}},
    "barrier": {"alphas": 5},
    "figures": {"splits": ["train"]},  # the test split's barrier figures are drawn by the studies run
}
TINY_NETWORKS = 3
"""TINY's networks: (depth 1, width 4), (1, 8) and (2, 8)."""
ONE_NETWORK = {**TINY, "studies": {"width": {"arch": "mlp", "depths": [1], "widths": [8]}}}
"""TINY's network of depth 1 and width 8 alone: every job kind of a network, once (the SLURM run; the killed run
starts from the TINY run's training of it)."""


def one_network_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a table that belong to ONE_NETWORK's network (to compare its run with the whole TINY run)."""
    (depth,), (width,) = ONE_NETWORK["studies"]["width"]["depths"], ONE_NETWORK["studies"]["width"]["widths"]
    return frame[(frame["depth"].astype(int) == depth) & (frame["width"].astype(int) == width)].reset_index(drop=True)


def environment() -> dict[str, str]:
    """This interpreter's bin/ first on PATH, as `make` puts the virtualenv's."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`snakemake` on the repository's Snakefile in `workdir`, with `config` written to workdir/config.yaml."""
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(path), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=environment(), cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@contextlib.contextmanager
def _workflow(workdir: Path, config: dict, output: OutputSettings) -> Iterator[WorkflowApi]:
    """The repository's Snakefile read with `config` (written to workdir/config.yaml) in `workdir`, in this process
    through Snakemake's API as the command line reads it, without a Snakemake process's start-up (most of a dry run's
    time); what Snakemake logs goes to this block's stdout."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, ResourceSettings

    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with contextlib.chdir(workdir), SnakemakeApi(output) as api:
        yield api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile",
                           config_settings=ConfigSettings(configfiles=[path]), workdir=workdir)


def planning_error(workdir: Path, config: dict) -> str:
    """What stops Snakemake from reading the Snakefile with `config` in `workdir` ('' when nothing does): the config
    validated against its schemas and checked by the workflow, as `snakemake -n` does first."""
    from snakemake.settings.types import OutputSettings

    try:
        with _workflow(workdir, config, OutputSettings(quiet=True)) as workflow:
            workflow.dag()
    except Exception as error:  # Snakemake's WorkflowError around a schema's ValidationError, or the config's own
        return f"{type(error).__name__}: {error}"
    return ""


def dry_run(workdir: Path, config: dict, *targets: str, commands: bool = False) -> str:
    """What `snakemake -n` (with `commands`, `-n -p`) prints for `config` in `workdir`: the jobs it would run, each
    with its reason (and its shell command), and the job stats; run in this process (:func:`_workflow`)."""
    from snakemake.settings.types import DAGSettings, OutputSettings

    printed = io.StringIO()
    output = OutputSettings(dryrun=True, stdout=True, printshellcmds=commands, nocolor=True)
    with contextlib.redirect_stdout(printed), _workflow(workdir, config, output) as workflow:
        dag = workflow.dag(dag_settings=DAGSettings(targets=set(targets))) if targets else workflow.dag()
        dag.execute_workflow(executor="local", pseudo_executor="dryrun")
    return printed.getvalue()


def planned_jobs(workdir: Path, config: dict) -> dict[str, int]:
    """Rule -> number of jobs a dry run would execute (empty when nothing is to be done)."""
    return job_counts(dry_run(workdir, config))


def job_counts(out: str) -> dict[str, int]:
    """Rule -> number of jobs in the job stats of a dry run's output or of a run's log (empty when nothing is to be
    done)."""
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
