"""A run killed with SIGKILL in the middle of its pair jobs finishes when started again the way `make run` starts
it (workflow/scripts/clear_stale_lock.py, then the same snakemake command: no --unlock, no --rerun-incomplete),
and its tables equal those of an uninterrupted run. The run starts where one that had trained its network stands:
the dataset and the trained seeds (the TINY run's, with Snakemake's records of them) are there, the rest is to do.

Only the output paths of README.md are relied on (results/**/pairs/**/barrier.json, results/tables/*.csv), not
rule names, so the test holds however the pair jobs are cut (one per pair and method, or per network and method).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.workflow_runs import ONE_NETWORK, SNAKEMAKE, environment, one_network_rows

REPO = Path(__file__).resolve().parents[1]
CLEAR_STALE_LOCK = REPO / "workflow" / "scripts" / "clear_stale_lock.py"
pytestmark = pytest.mark.workflow

# One of TINY's networks: tables do not depend on the other networks, so its tables must equal that network's rows of
# the session's uninterrupted TINY run (`tiny_run`).
CONFIG = ONE_NETWORK
METHODS = 3  # the default search.methods: none, weight_matching, sa
BARRIERS = (CONFIG["seeds"] // 2 + CONFIG["permuted_copies"] // 2) * METHODS
TIMEOUT = 1800  # seconds for any one run; the tiny config takes about a minute on 2 idle cores

# Columns that differ between two runs of the same config: timings (wall_seconds, search_seconds,
# block_wall_seconds, ... of src/permlmc/artifacts/tables.py) and provenance (when, where, which commit).
VARYING = re.compile(r"(^|_)(seconds|time|timestamp|date|started|finished|ready|host|hostname|commit|pid)$"
                     r"|^provenance")


def command(workdir: Path) -> list[str]:
    """The snakemake command of `make run` for this working directory."""
    return [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(workdir / "config.yaml"),
            "--cores", "2"]


def start(workdir: Path, log: str) -> subprocess.Popen[bytes]:
    """Snakemake in the background, in its own process group (a terminal's job: what SIGKILL hits)."""
    with open(workdir / log, "wb") as out:
        return subprocess.Popen(command(workdir), cwd=workdir, env=environment(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def tail(workdir: Path, log: str) -> str:
    return (workdir / log).read_text(errors="replace")[-6000:]


def barrier_files(workdir: Path) -> list[Path]:
    return list((workdir / "results").glob("**/pairs/**/barrier.json"))


def written_in_progress(workdir: Path) -> list[str]:
    """Outputs of running pair jobs that already exist: what Snakemake calls incomplete files after a kill."""
    return [p for p in outputs_in_progress(workdir) if "/pairs/" in p and (workdir / p).exists()]


def outputs_in_progress(workdir: Path) -> list[str]:
    """Outputs Snakemake has marked incomplete: those of the jobs running now (its .snakemake/incomplete records,
    one file per output, named by the path in urlsafe base64; long names are split into `@`-prefixed folders)."""
    root = workdir / ".snakemake" / "incomplete"
    paths = []
    for record in root.rglob("*") if root.is_dir() else []:
        if record.is_file() and not record.name.startswith("@"):
            encoded = "".join(part.lstrip("@") for part in record.relative_to(root).parts)
            try:
                paths.append(base64.urlsafe_b64decode(encoded).decode())
            except ValueError:
                continue
    return paths


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL Snakemake and its jobs at once, and wait until none of them is left."""
    with contextlib.suppress(ProcessLookupError):  # all of them exited already
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_members(proc.pid), f"processes of the killed run survive: {group_members(proc.pid)}"


def clear_stale_lock(workdir: Path) -> str:
    result = subprocess.run([sys.executable, str(CLEAR_STALE_LOCK), str(workdir)], capture_output=True, text=True,
                            timeout=60, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """The rows of ONE_NETWORK's network in results/tables/*.csv as text, without the columns that vary between runs
    and with the working directory taken out of paths; text, so that equal means bitwise equal numbers."""
    found = {}
    for path in sorted((workdir / "results" / "tables").glob("*.csv")):
        frame = one_network_rows(pd.read_csv(path, dtype=str, keep_default_na=False))
        frame = frame.drop(columns=[c for c in frame.columns if VARYING.search(c)])
        for prefix in {str(workdir), os.path.realpath(workdir)}:
            frame = frame.replace(re.escape(prefix), "<workdir>", regex=True)
        found[path.name] = frame
    return found


def wait_for(run: subprocess.Popen[bytes], workdir: Path, condition: Callable[[], bool], failure: str, *,
             freeze: bool = False) -> None:
    """Poll `condition` while the run goes on; fail with `failure` if it ends first or takes too long. With
    `freeze`, return with the run's process group stopped (SIGSTOP) in a state where `condition` holds: seen true,
    the group is stopped and `condition` checked again, and the run resumed if it no longer holds, so what the
    caller finds does not depend on how fast the machine moves between two polls."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        if condition():
            if not freeze:
                return
            with contextlib.suppress(ProcessLookupError):  # a run that just ended fails below
                os.killpg(run.pid, signal.SIGSTOP)
            if condition():
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGCONT)
        assert run.poll() is None, f"the run ended (rc {run.returncode}): {failure}:\n" + tail(workdir, "run.log")
        assert time.monotonic() < deadline, f"{failure}:\n" + tail(workdir, "run.log")
        time.sleep(0.02)


def trained(finished: Path, workdir: Path) -> list[str]:
    """Copy the dataset and ONE_NETWORK's trained seeds of the run in `finished` into `workdir`, with their
    modification times and Snakemake's records of them (.snakemake/metadata, one file per output named by its path in
    urlsafe base64): to Snakemake, `workdir` then holds a run that trained its network. Returns the copied paths."""
    (dataset,), study = CONFIG["datasets"], CONFIG["studies"]["width"]
    network = f"{study['arch']}-d{study['depths'][0]}-w{study['widths'][0]}"
    sources = [*(finished / "resources" / "datasets").glob(f"{dataset}.*"),
               *(finished / "results" / dataset / network).glob("seed*/model.*")]
    copied = []
    for source in sources:
        path = source.relative_to(finished)
        record = Path(".snakemake", "metadata", base64.urlsafe_b64encode(str(path).encode()).decode())
        for name in (path, record):
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(finished / name, workdir / name)
        copied.append(str(path))
    return copied


def test_a_killed_run_finishes_when_started_again_like_make_run(tiny_run: Path, tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    assert len(trained(tiny_run, killed)) == 2 + 2 * CONFIG["seeds"]  # the dataset and its sidecar, each seed's two
    started = time.monotonic()
    run = start(killed, "run.log")
    try:
        # 1. while the run works, its lock is left alone by clear_stale_lock.py, which names one of its processes
        wait_for(run, killed, lambda: bool(barrier_files(killed)), "no barrier written")
        live = clear_stale_lock(killed)
        match = re.fullmatch(r"clear_stale_lock: left the lock: Snakemake process (\d+)( \(and \d+ more\))? "
                             r"is running in (.+)", live)
        assert match and int(match[1]) in group_members(run.pid) and Path(match[3]) == killed.resolve(), live

        # 2. wait until a pair job is in the middle of its work: some, not all, barriers written, and an output of
        #    a running pair job already on disk (only such a file makes a rerun fail without --rerun-incomplete);
        #    then, the group stopped in that state, SIGKILL it: Snakemake and its running jobs
        wait_for(run, killed, lambda: 0 < len(barrier_files(killed)) < BARRIERS and bool(written_in_progress(killed)),
                 "no pair job seen in the middle of its work", freeze=True)
        kill_group(run)
        in_progress = written_in_progress(killed)
        assert in_progress, "no pair output was left on disk and incomplete"
        assert list((killed / ".snakemake" / "locks").glob("*.lock")), "the kill left no lock"
        assert 0 < len(barrier_files(killed)) < BARRIERS
        killed_at = time.monotonic() - started

        # 3. start it again as `make run` does: clear_stale_lock.py, then the same snakemake command
        cleared = clear_stale_lock(killed)
        assert cleared.startswith("clear_stale_lock: cleared a stale lock"), cleared
        rerun = subprocess.run(command(killed), cwd=killed, env=environment(), capture_output=True, text=True,
                               timeout=TIMEOUT)
        log = rerun.stdout + rerun.stderr
        assert rerun.returncode == 0, log[-8000:]
        assert f"workflow specific profile {REPO / 'profiles' / 'default'}" in log  # what redid the incomplete jobs
        assert "IncompleteFilesException" not in log and "LockException" not in log
        assert "train_seeds" not in (killed / "run.log").read_text() + log  # the copied training stood: no job redid it
    finally:
        if run.poll() is None:
            kill_group(run)
    print(f"killed after {killed_at:.0f} s with {len(in_progress)} pair outputs in progress; "
          f"all done after {time.monotonic() - started:.0f} s")

    # 4. the restarted run's tables equal the uninterrupted run's (its network's rows of the session's TINY run),
    #    timings and provenance aside
    expected, got = tables(tiny_run), tables(killed)
    assert set(got) == set(expected) and {"barriers.csv", "curves.csv", "sa_traces.csv", "models.csv"} <= set(got)
    for name, frame in expected.items():
        assert len(frame) > 0, name
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)
    assert len(barrier_files(killed)) == BARRIERS
    # and a finished run has nothing left to do
    dry = subprocess.run([*command(killed), "-n"], cwd=killed, env=environment(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
