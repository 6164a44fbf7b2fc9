"""Where a workflow run's job-seconds go: per rule and per stage, start-up against work.

Runs one workflow config from scratch (``snakemake --cores N`` in a fresh scratch directory) and prints, as markdown,
per rule and per stage (the ``permlmc.cli`` module that declares a job's verb, ``permlmc.cli.main.VERBS``): jobs,
mean start-up, work, interpreter exit and Snakemake overhead per job, and the share of the run's job-seconds.

- Every ``python -m permlmc`` process writes a JSON line to ``$LMC_TIMINGS`` (``permlmc.cli.timing``): start-up =
  ``ready - started``, work = ``finished - ready``. It belongs to the job whose shell command runs it with exactly
  its ``argv`` (Snakemake's metadata, ``.snakemake/metadata``, gives each finished job's rule and shell command). A
  job's span runs from its ``starttime`` (outputs marked incomplete, just before the job starts) to the mtime of its
  last metadata record (written once the job's outputs were checked); job-seconds are these spans.
- A ``BASH_ENV`` file's EXIT trap records when each job's shell exited (so bash no longer replaces itself by the
  job's command: one fork more per job). Exit = shell exit - the verb's ``finished`` (interpreter shutdown);
  Snakemake = span - start-up - work - exit (starting the shell; after its exit, checking outputs and writing
  metadata). Wall time is that of the whole ``snakemake`` command, DAG build included.

``--data-from DIR`` copies prepared datasets into the scratch directory, so their preparation is not timed; the
config's relative ``data.root`` is linked into it when the repository has one. An untimed interpreter imports torch
and the other heavy modules first (no cold page cache in the run). ``--dry-run-only`` times ``snakemake -n`` (the DAG
build) for each ``--config`` instead. From the repository root::

    .venv/bin/python bench/workflow_speed.py --config config/digits.yaml
    .venv/bin/python bench/workflow_speed.py --dry-run-only --config config/paper_mlp.yaml config/paper_conv.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

import yaml

from permlmc.cli.main import VERBS

REPO = Path(__file__).resolve().parents[1]
SHELL_STOPS = {"2>", ">", ">>", "2>>", "&>", "|", "||", "&&", ";", "&"}
WARM_MODULES = ("torch", "numpy", "scipy", "pandas", "matplotlib.pyplot", "safetensors.torch", "simanneal")
PARTS = {"startup": "start-up", "work": "work", "exit": "exit", "snakemake": "Snakemake"}


@dataclass
class Job:
    """One finished Snakemake job: its span, its ``permlmc`` processes' start-up and work, its shell's exit (s)."""

    rule: str
    shellcmd: str
    start: float  # Snakemake marked the outputs incomplete, just before starting the job
    end: float  # Snakemake wrote the job's last metadata record, after it exited and its outputs were checked
    commands: list[list[str]]  # argv of each `python -m permlmc` in its shell command
    verb: str = "?"
    processes: int = 0
    startup: float = 0.0
    work: float = 0.0
    finished: float | None = None  # the last verb returned
    shell_exit: float | None = None

    def seconds(self) -> dict[str, float | None]:
        """Span, start-up, work, interpreter exit (None: not measured) and Snakemake's part of the span."""
        exit_ = self.shell_exit - self.finished if self.shell_exit and self.finished else None
        span = self.end - self.start
        return {"span": span, "startup": self.startup, "work": self.work, "exit": exit_,
                "snakemake": span - self.startup - self.work - (exit_ or 0.0)}


def permlmc_commands(shellcmd: str) -> list[list[str]]:
    """The argument lists of every ``python -m permlmc ...`` in a shell command (up to a redirection or operator)."""
    tokens = shlex.split(shellcmd)
    return [list(takewhile(lambda t: t not in SHELL_STOPS and not t.startswith(("2>", ">", "&>")), tokens[i + 3:]))
            for i in range(len(tokens) - 2)
            if os.path.basename(tokens[i]).startswith("python") and tokens[i + 1:i + 3] == ["-m", "permlmc"]]


def read_jobs(workdir: Path) -> list[Job]:
    """Finished jobs from Snakemake's file-based metadata: one record per output file, grouped by job."""
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for root, _, names in os.walk(workdir / ".snakemake" / "metadata"):
        for path in (Path(root, name) for name in names):
            record, written = json.loads(path.read_text()), path.stat().st_mtime
            if record.get("rule"):
                key = (record["rule"], record.get("shellcmd") or str(record.get("job_hash")))
                starts, ends = groups.setdefault(key, ([], []))
                starts += [float(record["starttime"])] if record.get("starttime") is not None else []
                ends.append(written)
    jobs = [Job(rule, cmd, min(starts, default=max(ends)), max(ends), permlmc_commands(cmd))
            for (rule, cmd), (starts, ends) in groups.items()]
    return sorted(jobs, key=lambda job: job.start)


def match_processes(jobs: list[Job], timings: Path) -> tuple[int, int]:
    """Give each process of the timing file to the job that ran its argv. Returns (matched, all processes)."""
    lines = [json.loads(line) for line in timings.read_text().splitlines()] if timings.exists() else []
    for item in sorted(lines, key=lambda item: item["started"]):
        free = [j for j in jobs if item["argv"] in j.commands and j.processes < len(j.commands)]
        if free:
            job = min(free, key=lambda j: abs(j.start - item["started"]))
            job.verb, job.processes = item["verb"], job.processes + 1
            job.startup += item["ready"] - item["started"]
            job.work += item["finished"] - item["ready"]
            job.finished = max(job.finished or 0.0, item["finished"])
    return sum(j.processes for j in jobs), len(lines)


def bash_env(path: Path, records: Path) -> None:
    """A BASH_ENV file: each bash run with a command string writes, at exit, its start, its exit and the command."""
    records.mkdir(parents=True)
    path.write_text(  # the variable is dropped at once, so nothing the job starts reads the file again
        'unset BASH_ENV\nif [ -n "${BASH_EXECUTION_STRING:-}" ]; then\n    __wfs_start=$EPOCHREALTIME\n'
        "    trap 'printf \"%s\\t%s\\t%s\" \"$__wfs_start\" \"$EPOCHREALTIME\" \"$BASH_EXECUTION_STRING\""
        f" > {shlex.quote(str(records))}/$$-$__wfs_start' EXIT\nfi\n")


def match_shells(jobs: list[Job], records: Path) -> int:
    """Give each job the exit time of the shell that ran its command, within its span give or take a second (file-system
    timestamps against the shell's clock). Returns how many jobs got one."""
    shells = []
    for path in sorted(records.glob("*")):
        start, end, command = path.read_text().split("\t", 2)
        shells.append((float(start.replace(",", ".")), float(end.replace(",", ".")), command))
    for job in jobs:
        mine = [s for s in shells if job.shellcmd.strip() and job.shellcmd.strip() in s[2]
                and job.start - 1.0 <= s[0] <= s[1] <= job.end + 1.0]
        if mine:
            job.shell_exit = min(mine, key=lambda s: abs(s[0] - job.start))[1]
    return sum(job.shell_exit is not None for job in jobs)


def prepare(workdir: Path, config: Path, data_from: Path | None) -> None:
    """Copy prepared datasets from ``data_from`` and link the config's relative ``data.root`` into ``workdir``."""
    (target := workdir / "resources" / "datasets").mkdir(parents=True)
    if data_from is not None:
        folder = data_from / "resources" / "datasets" if (data_from / "resources" / "datasets").is_dir() else data_from
        found = sorted(folder.glob("*.safetensors"))
        if not found:
            raise SystemExit(f"--data-from {data_from}: no *.safetensors under {folder}")
        for item in [*found, *(p.with_suffix(".json") for p in found if p.with_suffix(".json").exists())]:
            shutil.copy2(item, target / item.name)
    root = ((yaml.safe_load(config.read_text()) or {}).get("data") or {}).get("root", "resources/raw")
    if root and not os.path.isabs(root) and (REPO / root).exists():
        (workdir / root).parent.mkdir(parents=True, exist_ok=True)
        (workdir / root).symlink_to((REPO / root).resolve())


def snakemake(workdir: Path, config: Path, cores: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
            str(config), "--cores", str(cores), *extra]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def run_workflow(config: Path, cores: int, scratch: Path, data_from: Path | None) -> tuple[list[str], list[Job]]:
    """Run the workflow once; returns report lines (totals included) and the finished jobs."""
    workdir, timings, shells = scratch / "work", scratch / "timings.jsonl", scratch / "shells"
    prepare(workdir, config, data_from)
    bash_env(scratch / "bash_env.sh", shells)
    env = {**os.environ, "LMC_TIMINGS": str(timings), "BASH_ENV": str(scratch / "bash_env.sh")}
    warm = "\n".join(f"try:\n    import {name}\nexcept ImportError:\n    pass" for name in WARM_MODULES)
    subprocess.run([sys.executable, "-c", warm], cwd=REPO, capture_output=True)
    command, log, before, started = snakemake(workdir, config, cores), scratch / "snakemake.log", load(), time.time()
    print(f"[workflow_speed] {shlex.join(command)}", file=sys.stderr, flush=True)
    with open(log, "w") as handle:
        rc = subprocess.run(command, cwd=workdir, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
    wall = time.time() - started
    if rc != 0:
        print(f"snakemake failed (exit {rc}); log {log}:\n{log.read_text()[-4000:]}", file=sys.stderr)
    jobs = read_jobs(workdir)
    (matched, processes), shelled = match_processes(jobs, timings), match_shells(jobs, shells)
    first = f"{min(j.start for j in jobs) - started:.1f} s" if jobs else "–"
    without, s = sorted({j.rule for j in jobs if not j.processes}), sums(jobs)
    parts = ", ".join(f"{PARTS[p]} {fmt(s[p][0], 1)} s ({share(s[p][0], s['span'][0])})" for p in PARTS if s[p][1])
    return [f"- snakemake exit {rc}, {len(jobs)} jobs finished, wall {wall:.1f} s ({first} before the first job); "
            f"load average {before} before, {load()} after",
            f"- permlmc processes matched to jobs: {matched} of {processes}; shell exits: {shelled} of {len(jobs)}",
            *([f"- jobs without a timing line (span counted as Snakemake's): {', '.join(without)}"] if without else []),
            f"- totals: {fmt(s['span'][0], 1)} job-seconds: {parts}; cores busy (job-s / ({cores} x wall)) "
            f"{share(s['span'][0], cores * wall)}"], jobs


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def share(part: float | None, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole and part is not None else "–"


def markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def sums(jobs: Sequence[Job]) -> dict[str, tuple[float, int]]:
    """Per part of a job's span: the sum over the jobs where it was measured, and how many those were."""
    values = [job.seconds() for job in jobs]
    return {name: (sum(v[name] or 0.0 for v in values), sum(v[name] is not None for v in values))
            for name in ("span", *PARTS)}


def group_table(jobs: Sequence[Job], by: str) -> str:
    """Per rule or per stage (in order of first start) and in total: means per job, job-seconds, share."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:  # a stage: the permlmc.cli module declaring the job's verb, e.g. pairs for search-pairs
        name = job.rule if by == "rule" else VERBS.get(job.verb, job.verb).rsplit(".", 1)[-1]
        groups.setdefault(name, []).append(job)
    if by == "stage":
        groups = {f"{name} ({', '.join(sorted({j.verb for j in group}))})": group for name, group in groups.items()}
    whole, body = sums(jobs)["span"][0], []
    for name, group in [*groups.items(), ("**total**", jobs)]:
        s = sums(group)
        body.append([name, str(len(group)), *(fmt(s[p][0] / s[p][1] if s[p][1] else None) for p in PARTS),
                     fmt(s["span"][0], 1), share(s["span"][0], whole)])
    return markdown([by, "jobs", *(f"{PARTS[p]} / job (s)" for p in PARTS), "job-s", "share"], body)


def dry_runs(configs: Sequence[Path], cores: int, scratch: Path) -> str:
    """``snakemake -n`` for each config in a fresh directory: status, jobs (the ``all`` target excluded), seconds."""
    begin = time.time()
    subprocess.run([sys.executable, "-m", "snakemake", "--version"], capture_output=True)
    alone, body = time.time() - begin, []
    for number, config in enumerate(configs, start=1):
        workdir = scratch / f"dry-{number}-{config.stem}"
        workdir.mkdir(parents=True)
        before, begin = load(), time.time()
        done = subprocess.run(snakemake(workdir, config, cores, "-n", "--quiet", "rules"), cwd=workdir,
                              capture_output=True, text=True)
        wall, lines = time.time() - begin, (done.stdout + done.stderr).splitlines()
        if done.returncode != 0:
            print(f"{config}: snakemake -n exit {done.returncode}\n{done.stderr[-2000:]}", file=sys.stderr)
        starts = [i for i, line in enumerate(lines) if line.strip() == "Job stats:"]
        rows = [line.split() for line in lines[starts[-1] + 1:]] if starts else []
        stats = {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}
        jobs = stats.pop("total", 0) - stats.pop("all", 0)
        largest = sorted(stats.items(), key=lambda item: -item[1])[:3]
        body.append([str(config), "ok" if done.returncode == 0 else f"exit {done.returncode}", f"{jobs:,}",
                     fmt(wall, 1), before, ", ".join(f"{rule} {count:,}" for rule, count in largest)])
    table = markdown(["config", "status", "jobs", "snakemake -n (s)", "load before", "largest rules"], body)
    return f"{table}\n\n`snakemake --version` alone: {alone:.1f} s. Jobs exclude the `all` target."


def provenance() -> str:
    cpus = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    model = next((line.split(":", 1)[1].strip() for line in cpus if line.startswith("model name")), platform.machine())
    head = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    return (f"machine: {model}, {os.cpu_count()} logical CPUs, {platform.platform()}, Python "
            f"{platform.python_version()}; code: {REPO} at {head.stdout.strip() or '?'}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", nargs="+", type=Path, default=[REPO / "config.yaml"],
                        help="workflow config; several only with --dry-run-only (default config.yaml)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--data-from", type=Path, metavar="DIR",
                        help="copy DIR/resources/datasets/*.safetensors (+ .json) into the scratch directory")
    parser.add_argument("--scratch", type=Path, metavar="DIR", help="make the scratch folder inside DIR")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--dry-run-only", action="store_true", help="only time `snakemake -n` for each config")
    args = parser.parse_args(argv)
    configs = [path.resolve() for path in args.config]
    if missing := [str(path) for path in configs if not path.is_file()]:
        parser.error(f"no config {', '.join(missing)}")
    if len(configs) > 1 and not args.dry_run_only:
        parser.error("several --config only with --dry-run-only")
    if args.scratch:
        args.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="workflow-speed-", dir=args.scratch)).resolve()
    out = ["# bench/workflow_speed.py", "", f"command: `{shlex.join([sys.executable, *sys.argv])}`", provenance()]
    try:
        if args.dry_run_only:
            out += ["", dry_runs(configs, args.cores, scratch)]
        else:
            lines, jobs = run_workflow(configs[0], args.cores, scratch, args.data_from)
            data = f"copied from {args.data_from}" if args.data_from else "prepared by the run"
            out += [f"config: {configs[0]}; --cores {args.cores}; data: {data}", "", *lines, "",
                    "Per rule (means per job; job-s: the jobs' spans; share: of all job-seconds):", "",
                    group_table(jobs, "rule"), "", "Per stage (the `permlmc.cli` module declaring the verbs):", "",
                    group_table(jobs, "stage")]
    finally:
        if args.keep:
            out.append(f"\nkept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
