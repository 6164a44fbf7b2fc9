"""Cluster execution on a real single-node SLURM (tests/slurm/cluster.sh): the scheduler, accounting and a fake GPU
work, and the tiny workflow run through profiles/slurm gives the same tables as a local run.

Needs root and apt (the cluster's packages are installed on first use); skipped otherwise, unless
LMC_REQUIRE_SLURM=1 turns the skip into a failure. The cluster is stopped at the end if this module started it
(LMC_SLURM_KEEP=1 leaves it running, so that the next run starts at once).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import snakemake
import yaml
from tests.workflow_runs import ONE_NETWORK, one_network_rows

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
PROFILE = REPO / "profiles" / "slurm"
STATE = Path(os.environ.get("LMC_SLURM_DIR", "/tmp/lmc-slurm"))
ACCOUNT = "lmc"  # created by cluster.sh
WORKFLOW_TIMEOUT = 540  # seconds per Snakemake run (about 4 min idle machine); SIGINT cancels SLURM jobs
TABLES = ("barriers", "curves", "sa_traces", "models")
pytestmark = pytest.mark.workflow


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "SLURM tests need root: tests/slurm/cluster.sh installs packages and starts system daemons"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "SLURM tests need apt-get to install slurm-wlm, munge, slurmdbd and mariadb-server"
    return None


def without_virtualenvs(path: str) -> str:
    """PATH minus every virtualenv's bin/: jobs must find the right Python through the Snakefile alone."""
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").exists())


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """Environment for SLURM clients (sinfo, sbatch, sacct) and for Snakemake runs against the cluster."""
    reason = unavailable()
    if reason:
        if os.environ.get("LMC_REQUIRE_SLURM") == "1":
            pytest.fail(f"LMC_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    env = {**os.environ, "LMC_SLURM_DIR": str(STATE)}
    was_up = subprocess.run([CLUSTER_SH, "status"], env=env, capture_output=True).returncode == 0
    up = subprocess.run([CLUSTER_SH, "up"], env=env, capture_output=True, text=True, timeout=900)
    print(up.stdout)
    if up.returncode != 0:
        pytest.fail(f"cluster.sh up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
    env.update(
        SLURM_CONF=str(STATE / "etc" / "slurm.conf"),
        SLURM_ACCOUNT=ACCOUNT,
        PATH=without_virtualenvs(os.environ["PATH"]),
    )
    yield env
    if not was_up and os.environ.get("LMC_SLURM_KEEP") != "1":
        down = subprocess.run([CLUSTER_SH, "down"], env=env, capture_output=True, text=True, timeout=300)
        print(down.stdout, down.stderr)


def run(env: dict[str, str], *cmd: str, timeout: float = 120) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def sacct(env: dict[str, str], *args: str) -> list[list[str]]:
    """Rows of `sacct -a -X -P -n`: one per job, allocations only (no steps)."""
    out = run(env, "sacct", "-a", "-X", "-P", "-n", *args)
    return [line.split("|") for line in out.splitlines() if line]


def settled(env: dict[str, str], *args: str, timeout: float = 60) -> list[list[str]]:
    """sacct rows once none is pending or running (accounting records reach slurmdbd asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = sacct(env, *args)
        if rows and not any(r[1] in ("PENDING", "RUNNING", "COMPLETING") for r in rows):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(1)


def test_scheduler_accounting_and_a_fake_gpu(cluster: dict[str, str], tmp_path: Path) -> None:
    nodes = run(cluster, "sinfo", "-h", "-N", "-o", "%N|%t|%c|%G").split()
    assert nodes, "sinfo lists no node"
    name, state, cpus, gres = nodes[0].split("|")
    assert state in ("idle", "mix", "alloc"), nodes
    assert "gpu:fake:1" in gres
    # `--gres=gpu:1` as a user would ask; `--gpus=1` as the SLURM plugin asks for a rule with gpu=1.
    job = run(cluster, "sbatch", "--parsable", "--wait", "-t", "1", "-A", ACCOUNT, "--gres=gpu:1",
              "-o", str(tmp_path / "gres.out"), "--wrap", "echo $CUDA_VISIBLE_DEVICES", timeout=120).strip()
    assert (tmp_path / "gres.out").read_text().strip() == "0"
    run(cluster, "srun", "-t", "1", "-A", ACCOUNT, "--gpus=1", "true", timeout=120)
    rows = settled(cluster, "-j", job, "-o", "JobID,State,Account,AllocTRES")
    assert rows and rows[0][1] == "COMPLETED", rows
    assert rows[0][2] == ACCOUNT and "gres/gpu=1" in rows[0][3], rows


def snakemake_run(workdir: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the tiny config in `workdir` under `timeout -s INT`; (result, wall seconds). The interpreter running
    the tests runs Snakemake (`-m snakemake`), so its jobs must use it too."""
    workdir.mkdir()
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(ONE_NETWORK))
    targets = [f"results/tables/{name}.csv" for name in TABLES]
    cmd = ["timeout", "-s", "INT", "-k", "30", str(WORKFLOW_TIMEOUT), sys.executable, "-m", "snakemake",
           "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(config), *args, *targets]
    start = time.monotonic()
    with open(workdir / "snakemake.log", "w") as log:
        result = subprocess.run(cmd, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, text=True,
                                timeout=WORKFLOW_TIMEOUT + 60)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        tail = (workdir / "snakemake.log").read_text()[-6000:]
        raise AssertionError(f"{' '.join(cmd)} failed with {result.returncode} after {seconds:.0f} s:\n{tail}")
    return result, seconds


def table(workdir: Path, name: str) -> pd.DataFrame:
    """A table's rows of the ONE_NETWORK network without their timing columns, in a canonical row order."""
    frame = one_network_rows(pd.read_csv(workdir / "results" / "tables" / f"{name}.csv"))
    frame = frame.drop(columns=[c for c in frame.columns if c.endswith("_seconds")])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_tiny_workflow_on_slurm_matches_a_local_run(cluster: dict[str, str], tiny_run: Path, tmp_path: Path) -> None:
    slurm_dir = tmp_path / "slurm"
    started = time.time()
    slurm_args = ["--workflow-profile", str(PROFILE), "--executor", "slurm",
                  "--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs"]
    _, slurm_seconds = snakemake_run(slurm_dir, cluster, *slurm_args)
    print(f"\nwall time of the tiny workflow on SLURM: {slurm_seconds:.0f} s")

    for name in ("barriers", "models"):  # against the session's local run: the same network, the same rows
        pd.testing.assert_frame_equal(table(slurm_dir, name), table(tiny_run, name),
                                      check_exact=False, rtol=1e-6, atol=1e-9, obj=f"{name}.csv")

    # Every SLURM job of the run completed, and grouping made far fewer submissions than workflow jobs.
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started - 60))
    rows = settled(cluster, "-S", since, "-o", "JobID,State,WorkDir")
    ours = [r for r in rows if os.path.realpath(r[2]) == os.path.realpath(slurm_dir)]
    assert ours, f"sacct lists no job run in {slurm_dir}:\n{rows}"
    assert all(r[1] == "COMPLETED" for r in ours), ours
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", (slurm_dir / "snakemake.log").read_text())
    assert steps, "the SLURM run's log reports no finished steps"
    workflow_jobs = int(steps[-1][1])
    assert len(ours) < workflow_jobs, f"{len(ours)} SLURM jobs for {workflow_jobs} workflow jobs"
    slurm_logs = slurm_dir / ".snakemake" / "slurm_logs"
    # each network's copies and pair jobs are one SLURM job
    assert len(list(slurm_logs.glob("group_pairs*/*.log"))) == 1, "the network's pair jobs were not grouped"

    # The jobs' Snakemake ran on this interpreter (the plugin starts it with the submitting Python), and so did
    # `python -m permlmc`: PATH had no virtualenv, so only the Snakefile's PATH prefix could have found it.
    job_commands = [line for log in slurm_logs.rglob("*.log") for line in log.read_text().splitlines()
                    if line.strip().startswith("Command:")]
    assert job_commands
    installed = str(Path(snakemake.__file__).parent)
    assert all(installed in line for line in job_commands), job_commands[:3]
