"""Where a workflow run's job-seconds go: per rule, start-up against work, for this tree and a baseline revision.

Runs one workflow config from scratch (``snakemake --cores N`` in a fresh scratch directory) and prints, per rule:
jobs, mean start-up per job (process start to first work), mean work per job, mean interpreter exit per job (the
verb's return to its shell's exit), mean Snakemake overhead per job (the rest of the job's span as Snakemake sees
it, see below) and the rule's share of the run's job-seconds; then totals: jobs, job-seconds, start-up share, wall
time of the run. With ``--baseline REV`` it does the same for that revision (e.g. ``80cbf4c``, the DAG's previous
shape: one job per pair for searches and one for interpolations, one job per figure) in the same invocation, with the
same config, cores and data, one run after the other (the current tree first, never both at once), and prints both
side by side with ratios new/baseline per rule, per stage (rules grouped by the ``lmc`` verbs they run, since the
two DAGs name their rules differently) and in total. The output is markdown that can go into docs/benchmarks.md.

How it measures
---------------
- **The current tree** (the working tree this file is in, uncommitted changes included) writes one JSON line per
  ``python -m permlmc`` process to the file named by ``LMC_TIMINGS`` (``src/permlmc/cli/timing.py``, ``main()`` in
  ``src/permlmc/cli/main.py``): ``started`` (process start, from ``/proc/self/stat``), ``ready`` (interpreter and every
  module the verb needs loaded), ``finished`` (the verb returned), ``argv``. Start-up = ready - started, work =
  finished - ready.
- **The baseline** is checked out with ``git worktree add`` into the scratch directory and its own Snakefile is run
  with ``PYTHONPATH=<worktree>/src``, so its jobs' ``python -m permlmc`` import that checkout's code (checked twice: a
  probe ``import permlmc`` in the jobs' environment before the run, and ``permlmc.__file__`` recorded by every job).
  That revision has no ``LMC_TIMINGS``; ``bench/baseline_timing/sitecustomize.py``, first on ``PYTHONPATH`` for the
  baseline run only, gives its processes the same lines: ``started`` read the same way, ``ready`` when
  ``argparse.ArgumentParser.parse_args`` first returns (the old CLI imports torch at module import, before parsing),
  ``finished`` at exit (``atexit``). This places the old verbs' handler-level imports (``permlmc.commands`` and what it
  imports, e.g. matplotlib for ``plot``) in "work", not "start-up", which flatters the baseline slightly. A revision
  that has ``src/permlmc/cli/timing.py`` itself is timed by its own lines instead.
- **Jobs to rules.** Snakemake's metadata (``.snakemake/metadata``, one record per output file) gives each finished
  job's rule and shell command. Each ``lmc`` process is matched to the job whose shell command runs ``python -m
  lmc`` with exactly its ``argv``; a process without one (no ``argv`` in its line) goes to the job of the same verb
  whose span contains it.
- **A job's span** runs from the moment Snakemake marks its outputs incomplete, just before it starts the job (the
  marker's mtime: Snakemake's own ``starttime``), to the moment it has written the job's last metadata record, after
  the job exited and its outputs were checked (that record's mtime). Job-seconds are these spans. Waiting for a
  free core is not in them (a job is started when a core is free).
- **Interpreter exit and Snakemake's per-job overhead.** The run's shells get a ``BASH_ENV`` file (the same in both
  runs) whose EXIT trap writes when each shell started and exited and the command it ran; a job's shell is the one
  whose command contains the job's shell command. Interpreter exit = shell exit - the verb's ``finished`` (Python
  and torch shutting down; in the baseline after its ``atexit`` line). Snakemake's overhead = span - process
  lifetime (``finished - started``) - interpreter exit: Snakemake preparing and starting the shell, bash, and, after
  the shell exited, Snakemake noticing it, checking the outputs and writing metadata (input checksums). The trap
  keeps bash from replacing itself by the job's last command: one more process, a millisecond, in both runs. Where
  a shell's times are missing the exit counts as Snakemake's (the output says how many shells were matched).
- **Wall time** is that of the whole ``snakemake`` command, DAG build included; "before the first job" is how much of
  it passed before Snakemake started the first job.

Both runs start from a fresh scratch directory each. With ``--data-from DIR`` the prepared datasets
(``DIR/resources/datasets/*.safetensors`` and their ``.json``, or ``DIR/*.safetensors`` and ``.json``) are copied into
each, so data preparation is not timed (twice); otherwise the workflow prepares them in each run. A relative
``data.root`` of the config that exists in the repository (``resources/raw``) is linked into each scratch
directory. Before the runs one untimed interpreter imports torch and the other heavy modules, so neither run pays
for a cold page cache alone.

``--dry-run-only`` times ``snakemake -n`` (building the DAG) for each ``--config`` (and the baseline) in fresh
directories and prints job counts and seconds, e.g. for ``config/paper_mlp.yaml`` and ``config/paper_conv.yaml``.

Usage (from the repository root)::

    .venv/bin/python bench/workflow_speed.py --config config/digits.yaml --baseline 80cbf4c
    .venv/bin/python bench/workflow_speed.py --dry-run-only --config config/paper_mlp.yaml config/paper_conv.yaml \
        --baseline 80cbf4c

Options: ``--config PATH...`` (default ``config.yaml``; several only with ``--dry-run-only``), ``--baseline REV``,
``--cores N`` (default 2), ``--data-from DIR``, ``--scratch DIR`` (a fresh folder is made inside it; default: the
system's temporary folder), ``--keep`` (keep the scratch folders and the baseline's worktree).
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "bench" / "baseline_timing"
BASELINE_VARIABLE = "LMC_BASELINE_TIMINGS"
# Rules of the two DAG shapes grouped by the lmc verbs they run (the baseline's verb names and today's).
STAGES = {
    "prepare-dataset": "data",
    "train": "training",
    "train-seeds": "training",
    "permute": "permuted copies",
    "permute-copies": "permuted copies",
    "search": "searches + interpolations",
    "barrier": "searches + interpolations",
    "search-pair": "searches + interpolations",
    "interpolate-pair": "searches + interpolations",
    "search-pairs": "searches + interpolations",
    "tabulate-barriers": "tables",
    "tabulate-models": "tables",
    "tabulate-rows": "tables",
    "tabulate-study": "tables",
    "plot": "figures",
    "plot-figures": "figures",
}
SHELL_STOPS = {"2>", ">", ">>", "2>>", "&>", "|", "||", "&&", ";", "&"}
WARM_MODULES = ("torch", "numpy", "scipy", "pandas", "matplotlib.pyplot", "safetensors.torch", "simanneal")


# --- one run --------------------------------------------------------------------------------------------------


@dataclass
class Process:
    """One ``python -m permlmc`` process's timing line."""

    verb: str | None
    argv: list[str] | None
    started: float
    ready: float
    finished: float
    status: str | None
    lmc_file: str | None

    @property
    def startup(self) -> float:
        return self.ready - self.started

    @property
    def work(self) -> float:
        return self.finished - self.ready

    @property
    def lifetime(self) -> float:
        return self.finished - self.started


@dataclass
class Job:
    """One finished Snakemake job, from its metadata records."""

    rule: str
    shellcmd: str
    start: float  # Snakemake marked the outputs incomplete (just before starting the job)
    end: float  # Snakemake wrote the job's last metadata record (after it exited and its outputs were checked)
    commands: list[list[str]]  # argv of each `python -m permlmc` in its shell command
    processes: list[Process] = field(default_factory=list)
    shell: tuple[float, float] | None = None  # when the job's bash started and exited (BASH_ENV record)

    @property
    def span(self) -> float:
        return self.end - self.start

    @property
    def verb(self) -> str:
        if self.processes and self.processes[0].verb:
            return self.processes[0].verb
        return command_verb(self.commands[0]) if self.commands else "?"

    @property
    def startup(self) -> float:
        return sum(p.startup for p in self.processes)

    @property
    def work(self) -> float:
        return sum(p.work for p in self.processes)

    @property
    def outside(self) -> float:
        """The job's span outside its lmc processes' lifetimes: interpreter exit and Snakemake's own overhead."""
        return self.span - sum(p.lifetime for p in self.processes)

    @property
    def exit(self) -> float | None:
        """From the (last) verb's return to its shell's exit: interpreter shutdown (None: not measured)."""
        if self.shell is None or not self.processes:
            return None
        return self.shell[1] - max(p.finished for p in self.processes)

    @property
    def snakemake(self) -> float:
        """Snakemake's own part of the span: before the shell started and after it exited (all of outside when
        the shell's times are missing)."""
        return self.outside - (self.exit or 0.0)


@dataclass
class Run:
    label: str
    source: str  # what ran: the tree's path, or the revision
    workdir: Path
    wall: float
    rc: int
    log: Path
    jobs: list[Job]
    unmatched: list[Process]
    timing_source: str
    probe_lmc_file: str
    load_before: str
    load_after: str
    started_at: float

    @property
    def before_first_job(self) -> float | None:
        return min(j.start for j in self.jobs) - self.started_at if self.jobs else None


def command_verb(argv: Sequence[str]) -> str:
    """The verb of an ``lmc`` argument list: its first word that is neither an option nor an option's value."""
    with_value = {"--threads", "--device"}
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in with_value:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return "?"


def lmc_commands(shellcmd: str) -> list[list[str]]:
    """The argument lists of every ``python -m permlmc ...`` in a shell command (up to a redirection or operator)."""
    try:
        tokens = shlex.split(shellcmd)
    except ValueError:
        return []
    commands = []
    for index in range(len(tokens) - 2):
        python = os.path.basename(tokens[index]).startswith("python")
        if python and tokens[index + 1] == "-m" and tokens[index + 2] in PACKAGES:
            args = []
            for token in tokens[index + 3:]:
                if token in SHELL_STOPS or token.startswith(("2>", ">", "&>")):
                    break
                args.append(token)
            commands.append(args)
    return commands


def read_jobs(workdir: Path) -> list[Job]:
    """Finished jobs from Snakemake's file-based metadata: one record per output file, grouped by job."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for root, _, names in os.walk(workdir / ".snakemake" / "metadata"):
        for name in names:
            path = Path(root, name)
            try:
                record = json.loads(path.read_text())
                written = path.stat().st_mtime
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(record, dict) or not record.get("rule"):
                continue
            shellcmd = record.get("shellcmd") or ""
            key = (record["rule"], shellcmd or str(record.get("job_hash")))
            group = groups.setdefault(key, {"start": [], "end": []})
            if record.get("starttime") is not None:
                group["start"].append(float(record["starttime"]))
            group["end"].append(written)
    jobs = []
    for (rule, shellcmd), group in groups.items():
        end = max(group["end"])
        start = min(group["start"]) if group["start"] else end
        jobs.append(Job(rule, shellcmd, start, end, lmc_commands(shellcmd)))
    return sorted(jobs, key=lambda job: job.start)


def bash_env(path: Path, records: Path) -> None:
    """A BASH_ENV file: every bash the run starts (Snakemake runs each job's shell command in one) writes, at exit,
    when it started and exited and the command it ran, one file per shell. The EXIT trap keeps bash from replacing
    itself by the job's last command, so the job's python is one fork further down: the same in both runs."""
    records.mkdir(parents=True, exist_ok=True)
    target = shlex.quote(str(records))
    path.write_text(
        "# bench/workflow_speed.py: when each job's shell started and exited (only shells given a command string;\n"
        "# the variable is dropped at once, so nothing the job starts reads this file again)\n"
        "unset BASH_ENV\n"
        'if [ -n "${BASH_EXECUTION_STRING:-}" ]; then\n'
        "    __wfs_start=$EPOCHREALTIME\n"
        f"    trap 'printf \"%s\\t%s\\t%s\" \"$__wfs_start\" \"$EPOCHREALTIME\" \"$BASH_EXECUTION_STRING\""
        f" > {target}/$$-$__wfs_start' EXIT\n"
        "fi\n")


def read_shells(records: Path) -> list[tuple[float, float, str]]:
    shells = []
    for path in sorted(records.glob("*")) if records.is_dir() else []:
        try:
            start, end, command = path.read_text().split("\t", 2)
            shells.append((float(start.replace(",", ".")), float(end.replace(",", ".")), command))
        except (OSError, ValueError):
            continue
    return shells


def match_shells(jobs: list[Job], shells: list[tuple[float, float, str]]) -> int:
    """Give each job the shell that ran its command (its shell command is part of what bash ran)."""
    matched = 0
    for job in jobs:
        command = job.shellcmd.strip()
        candidates = [s for s in shells if command and command in s[2]
                      and job.start - 1.0 <= s[0] and s[1] <= job.end + 1.0]
        if candidates:
            start, end, _ = min(candidates, key=lambda s: abs(s[0] - job.start))
            job.shell = (start, end)
            matched += 1
    return matched


def read_processes(path: Path) -> list[Process]:
    processes: list[Process] = []
    if not path.exists():
        return processes
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        ready = item.get("ready")
        if ready is None or item.get("started") is None or item.get("finished") is None:
            continue
        processes.append(Process(item.get("verb"), item.get("argv"), float(item["started"]), float(ready),
                                 float(item["finished"]), item.get("status"), item.get("lmc_file")))
    return sorted(processes, key=lambda p: p.started)


def match(jobs: list[Job], processes: list[Process]) -> tuple[int, list[Process]]:
    """Give each process to its job: by exact argv, else by verb and time. Returns (matched by argv, unmatched)."""
    by_args: dict[tuple[str, ...], list[Job]] = {}
    for each in jobs:
        for args in each.commands:
            by_args.setdefault(tuple(args), []).append(each)

    def closest(candidates: Iterable[Job], process: Process) -> Job | None:
        free = [j for j in candidates if len(j.processes) < max(1, len(j.commands))]
        return min(free, key=lambda j: abs(j.start - process.started), default=None)

    exact, rest = 0, list[Process]()
    for process in processes:
        job: Job | None = closest(by_args.get(tuple(process.argv), []), process) if process.argv is not None else None
        if job is None:
            rest.append(process)
        else:
            job.processes.append(process)
            exact += 1
    unmatched: list[Process] = []
    slack = 1.0  # seconds: file-system timestamps against the process's own clock readings
    for process in rest:
        candidates = [j for j in jobs if j.start - slack <= process.started and process.finished <= j.end + slack
                      and (process.verb is None or any(command_verb(a) == process.verb for a in j.commands))]
        found = closest(candidates, process)
        if found is None:
            unmatched.append(process)
        else:
            found.processes.append(process)
    return exact, unmatched


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def copy_datasets(source: Path, workdir: Path) -> list[str]:
    folder = source / "resources" / "datasets"
    if not folder.is_dir():
        folder = source
    target = workdir / "resources" / "datasets"
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(folder.glob("*.safetensors")):
        sidecar = path.with_suffix(".json")
        for item in (path, sidecar):
            if item.exists():
                shutil.copy2(item, target / item.name)
        copied.append(path.stem)
    if not copied:
        raise SystemExit(f"--data-from {source}: no *.safetensors under {folder}")
    return copied


def link_raw_data(config: Path, workdir: Path) -> str | None:
    """Link the config's relative ``data.root`` (e.g. resources/raw) into the scratch directory if the repo has it."""
    try:
        import yaml

        root = (yaml.safe_load(config.read_text()) or {}).get("data", {}).get("root", "resources/raw")
    except Exception:  # noqa: BLE001 - a config the workflow itself will judge
        root = "resources/raw"
    if not root or os.path.isabs(root) or not (REPO / root).exists():
        return None
    link = workdir / root
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to((REPO / root).resolve())
    return root


def snakemake_command(snakefile: Path, workdir: Path, config: Path, cores: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "--configfile",
            str(config), "--cores", str(cores), *extra]


PACKAGES = ("permlmc", "lmc")
"""The library's import name, today's first: a baseline revision may predate the rename."""


def package_of(src: Path) -> str:
    """The import name of the library under ``src``."""
    return next((name for name in PACKAGES if (src / name / "__init__.py").exists()), PACKAGES[0])


def probe_lmc(env: dict[str, str], workdir: Path, package: str) -> str:
    """``<package>.__file__`` as the jobs' interpreter (the one running Snakemake, first on their PATH) sees it."""
    code = f"import {package}; print({package}.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env,
                          capture_output=True, text=True)
    return done.stdout.strip() or f"(import failed: {done.stderr.strip()[-200:]})"


@dataclass
class Source:
    label: str
    description: str
    snakefile: Path
    src: Path
    native_timing: bool


def run_workflow(source: Source, config: Path, cores: int, scratch: Path, data_from: Path | None) -> Run:
    base = scratch / source.label
    workdir = base / "work"
    workdir.mkdir(parents=True)
    if data_from is not None:
        copy_datasets(data_from, workdir)
    link_raw_data(config, workdir)
    timings = base / "timings.jsonl"
    env = dict(os.environ)
    for name in ("LMC_TIMINGS", BASELINE_VARIABLE):
        env.pop(name, None)
    if source.src != REPO / "src":
        paths = [str(source.src)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        if not source.native_timing:
            paths.insert(0, str(SITE))
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env["LMC_TIMINGS" if source.native_timing else BASELINE_VARIABLE] = str(timings)
    probe = probe_lmc(env, workdir, package_of(source.src))
    bash_env(base / "bash_env.sh", base / "shells")
    env["BASH_ENV"] = str(base / "bash_env.sh")
    expected = source.src / package_of(source.src) / "__init__.py"
    if Path(probe).resolve() != expected.resolve():
        raise SystemExit(f"{source.label}: the jobs' interpreter imports the library from {probe}, not {expected}")
    log = base / "snakemake.log"
    command = snakemake_command(source.snakefile, workdir, config, cores)
    print(f"[{source.label}] {shlex.join(command)}", file=sys.stderr, flush=True)
    load_before = load_average()
    started_at = time.time()
    with open(log, "w") as handle:
        rc = subprocess.run(command, cwd=workdir, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
    wall = time.time() - started_at
    load_after = load_average()
    if rc != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        print(f"[{source.label}] snakemake failed (exit {rc}); log {log}:\n{tail}", file=sys.stderr)
    jobs = read_jobs(workdir)
    processes = read_processes(timings)
    exact, unmatched = match(jobs, processes)
    shells = match_shells(jobs, read_shells(base / "shells"))
    how = "its own LMC_TIMINGS lines" if source.native_timing else "bench/baseline_timing/sitecustomize.py"
    matched = sum(len(j.processes) for j in jobs)
    timing_source = (f"{how}; {matched} of {len(processes)} lmc processes matched to jobs ({exact} by argv); "
                     f"shell start and exit of {shells} of {len(jobs)} jobs (BASH_ENV)")
    return Run(source.label, source.description, workdir, wall, rc, log, jobs, unmatched, timing_source, probe,
               load_before, load_after, started_at)


# --- tables ---------------------------------------------------------------------------------------------------


@dataclass
class Row:
    jobs: int = 0
    startup: float = 0.0
    work: float = 0.0
    exit: float = 0.0
    exit_jobs: int = 0  # jobs whose interpreter exit was measured
    snakemake: float = 0.0
    span: float = 0.0
    no_process: int = 0

    def add(self, job: Job) -> None:
        self.jobs += 1
        self.startup += job.startup
        self.work += job.work
        if job.exit is not None:
            self.exit += job.exit
            self.exit_jobs += 1
        self.snakemake += job.snakemake
        self.span += job.span
        self.no_process += not job.processes

    def mean(self, name: str) -> float | None:
        count = self.exit_jobs if name == "exit" else self.jobs
        return getattr(self, name) / count if count else None


def rows(run: Run, key: str) -> dict[str, Row]:
    table: dict[str, Row] = {}
    for job in run.jobs:  # in order of first start
        name = job.rule if key == "rule" else STAGES.get(job.verb, job.verb)
        table.setdefault(name, Row()).add(job)
    return table


def total(run: Run) -> Row:
    row = Row()
    for job in run.jobs:
        row.add(job)
    return row


def seconds(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def ratio(new: float | None, old: float | None) -> str:
    return f"{new / old:.2f}x" if new is not None and old else "–"


def markdown(header: Sequence[str], body: Iterable[Sequence[str]], right: Sequence[bool]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


MEANS = (("startup", "start-up / job (s)"), ("work", "work / job (s)"), ("exit", "exit / job (s)"),
         ("snakemake", "Snakemake / job (s)"))


def single_table(run: Run, key: str) -> str:
    table, whole = rows(run, key), total(run)
    header = [key, "jobs", *(title for _, title in MEANS), "job-s", "share"]
    body = [[name, str(r.jobs), *(seconds(r.mean(m)) for m, _ in MEANS), seconds(r.span, 1), share(r.span, whole.span)]
            for name, r in [*table.items(), ("**total**", whole)]]
    return markdown(header, body, [False] + [True] * (len(header) - 1))


def side_by_side(new: Run, old: Run, key: str) -> str:
    """One row per rule (or stage); each cell `new / base`; ratios new/baseline of job-seconds and start-up."""
    a, b = rows(new, key), rows(old, key)
    names = list(a) + [name for name in b if name not in a]
    ta, tb = total(new), total(old)

    def pair(x: str | None, y: str | None) -> str:
        return f"{x if x is not None else '–'} / {y if y is not None else '–'}"

    def cells(name: str, x: Row | None, y: Row | None) -> list[str]:
        means = [pair(seconds(x.mean(m)) if x else None, seconds(y.mean(m)) if y else None) for m, _ in MEANS]
        return [name, pair(str(x.jobs) if x else None, str(y.jobs) if y else None), *means,
                pair(seconds(x.span, 1) if x else None, seconds(y.span, 1) if y else None),
                pair(share(x.span, ta.span) if x else None, share(y.span, tb.span) if y else None),
                ratio(x.span, y.span) if x and y else "–", ratio(x.startup, y.startup) if x and y else "–"]

    header = [key, "jobs", *(title for _, title in MEANS), "job-s", "share", "job-s new/base", "start-up new/base"]
    body = [cells(name, a.get(name), b.get(name)) for name in names] + [cells("**total**", ta, tb)]
    return markdown(header, body, [False] + [True] * (len(header) - 1))


def totals_table(runs: Sequence[Run], cores: int) -> str:
    def values(run: Run) -> list[tuple[str, float | None, str]]:
        t = total(run)
        exit_ = t.exit if t.exit_jobs else None
        return [
            ("jobs", t.jobs, str(t.jobs)),
            ("job-seconds", t.span, seconds(t.span, 1)),
            ("start-up (s)", t.startup, seconds(t.startup, 1)),
            ("start-up share", None, share(t.startup, t.span)),
            ("work (s)", t.work, seconds(t.work, 1)),
            ("work share", None, share(t.work, t.span)),
            ("interpreter exit (s)", exit_, seconds(exit_, 1)),
            ("interpreter exit share", None, share(exit_, t.span) if exit_ is not None else "–"),
            ("Snakemake's per-job overhead (s)", t.snakemake, seconds(t.snakemake, 1)),
            ("Snakemake's per-job overhead share", None, share(t.snakemake, t.span)),
            ("wall time of the run (s)", run.wall, seconds(run.wall, 1)),
            ("before the first job (s)", run.before_first_job, seconds(run.before_first_job, 1)),
            (f"cores busy (job-s / ({cores} x wall))", None, share(t.span, cores * run.wall)),
        ]

    columns = [values(run) for run in runs]
    header = ["", *(run.label for run in runs)] + (["new/baseline"] if len(runs) == 2 else [])
    body = []
    for index, (name, *_rest) in enumerate(columns[0]):
        line = [name, *(column[index][2] for column in columns)]
        if len(runs) == 2:
            line.append(ratio(columns[0][index][1], columns[1][index][1]))
        body.append(line)
    return markdown(header, body, [False] + [True] * (len(header) - 1))


# --- the benchmark --------------------------------------------------------------------------------------------


def machine() -> list[str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = [f"Python {platform.python_version()}"]
    for name in ("snakemake", "torch"):
        try:
            from importlib.metadata import version

            versions.append(f"{name} {version(name)}")
        except Exception:  # noqa: BLE001 - a missing package is only not reported
            pass
    return [f"machine: {model}, {os.cpu_count()} logical CPUs ({usable} usable), {platform.system()} "
            f"{platform.release()}; {', '.join(versions)}"]


def warm_up() -> None:
    """One untimed interpreter imports the heavy modules, so neither run meets a cold page cache alone."""
    code = "\n".join(f"try:\n    import {name}\nexcept Exception:\n    pass" for name in WARM_MODULES)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True)


def current_source() -> Source:
    head = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) or bool(
        git("ls-files", "--others", "--exclude-standard", "src", "workflow", "Snakefile"))
    description = f"working tree {REPO} (HEAD {head}{', with uncommitted changes' if dirty else ''})"
    return Source("current", description, REPO / "Snakefile", REPO / "src", native_timing=True)


def baseline_source(revision: str, scratch: Path) -> tuple[Source, Path]:
    full = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    tree = scratch / f"baseline-src-{full[:10]}"
    git("worktree", "add", "--detach", str(tree), full)
    timings = [tree / "src" / package / path for package in PACKAGES for path in ("cli/timing.py", "timing.py")]
    native = any(path.exists() and "LMC_TIMINGS" in path.read_text() for path in timings)
    subject = git("log", "-1", "--format=%s", full)
    description = f"revision {full[:10]} ({subject}), worktree {tree}"
    return Source("baseline", description, tree / "Snakefile", tree / "src", native_timing=native), tree


def remove_worktree(tree: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
    subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)


def parse_job_stats(output: str) -> dict[str, int]:
    """The last ``Job stats`` table of a Snakemake dry run: {rule: count}, ``total`` included."""
    stats: dict[str, int] = {}
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Job stats:"]
    if not starts:
        return stats
    for line in lines[starts[-1] + 1:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            stats[parts[0]] = int(parts[1])
            if parts[0] == "total":
                break
    return stats


def dry_runs(configs: Sequence[Path], sources: Sequence[Source], cores: int, scratch: Path) -> str:
    started = time.time()
    subprocess.run([sys.executable, "-m", "snakemake", "--version"], capture_output=True)
    snakemake_alone = time.time() - started
    body = []
    for number, config in enumerate(configs, start=1):
        for source in sources:
            workdir = scratch / f"dry-{source.label}-{number}-{config.stem}"
            workdir.mkdir(parents=True)
            env = dict(os.environ)
            env.pop("LMC_TIMINGS", None)
            if source.src != REPO / "src":
                env["PYTHONPATH"] = os.pathsep.join([str(source.src)] + (
                    [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
            command = snakemake_command(source.snakefile, workdir, config, cores, "-n", "--quiet", "rules")
            print(f"[dry run {source.label}] {shlex.join(command)}", file=sys.stderr, flush=True)
            load = load_average()
            begin = time.time()
            done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
            wall = time.time() - begin
            stats = parse_job_stats(done.stdout + done.stderr)
            jobs = stats.get("total", 0) - stats.get("all", 0)
            if done.returncode != 0:
                print(f"[dry run {source.label}] {config}: exit {done.returncode}\n{done.stderr[-2000:]}",
                      file=sys.stderr)
            largest = sorted(((n, r) for r, n in stats.items() if r not in ("total", "all")), reverse=True)[:3]
            body.append([str(config), source.label, "ok" if done.returncode == 0 else f"exit {done.returncode}",
                         f"{jobs:,}", seconds(wall, 1), load,
                         ", ".join(f"{rule} {count:,}" for count, rule in largest)])
    table = markdown(["config", "code", "status", "jobs", "snakemake -n (s)", "load before", "largest rules"],
                     body, [False, False, False, True, True, False, False])
    return table + (f"\n\n`snakemake --version` alone (interpreter and Snakemake's imports): "
                    f"{snakemake_alone:.1f} s. Jobs exclude the `all` target.")


def report_run(run: Run) -> list[str]:
    lines = [f"**{run.label}**: {run.source}",
             f"- snakemake exit {run.rc}, {len(run.jobs)} jobs finished, wall {run.wall:.1f} s; load average "
             f"{run.load_before} before, {run.load_after} after",
             f"- timing: {run.timing_source}; lmc imported from {run.probe_lmc_file} (probe in the jobs' environment)"]
    files = {p.lmc_file for j in run.jobs for p in j.processes if p.lmc_file}
    if files:
        lines.append(f"- permlmc.__file__ recorded by the jobs: {', '.join(sorted(files))}")
    without = [j.rule for j in run.jobs if not j.processes]
    if without:
        lines.append(f"- {len(without)} jobs without an lmc process line (their span counts as Snakemake's): "
                     f"{', '.join(sorted(set(without)))}")
    if run.unmatched:
        lines.append(f"- {len(run.unmatched)} lmc processes matched to no finished job (not in the tables)")
    errors = [p for j in run.jobs for p in j.processes if p.status not in (None, "ok")]
    if errors:
        lines.append(f"- {len(errors)} processes recorded status other than ok")
    lines.append(f"- scratch: {run.workdir} (Snakemake's log: {run.log})")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", type=Path, default=[REPO / "config.yaml"],
                        help="workflow config (several only with --dry-run-only)")
    parser.add_argument("--baseline", metavar="REV", help="also run this revision's workflow, e.g. 80cbf4c")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--data-from", type=Path, metavar="DIR",
                        help="copy DIR/resources/datasets/*.safetensors (+ .json) into each scratch directory")
    parser.add_argument("--scratch", type=Path, metavar="DIR", help="make the scratch folder inside DIR")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders and the baseline's worktree")
    parser.add_argument("--dry-run-only", action="store_true",
                        help="only time `snakemake -n` (the DAG build) for each config")
    args = parser.parse_args(argv)
    configs = [path.resolve() for path in args.config]
    for path in configs:
        if not path.is_file():
            parser.error(f"no config {path}")
    if len(configs) > 1 and not args.dry_run_only:
        parser.error("several --config only with --dry-run-only")
    if args.scratch:
        args.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="workflow-speed-", dir=args.scratch)).resolve()

    out = ["# bench/workflow_speed.py", "",
           f"command: `{shlex.join([sys.executable, *sys.argv])}` (in {Path.cwd()})"]
    out += machine()
    out.append(f"load average at the start: {load_average()}")
    sources = [current_source()]
    tree = None
    try:
        if args.baseline:
            baseline, tree = baseline_source(args.baseline, scratch)
            sources.append(baseline)
        out += [f"{s.label}: {s.description}" for s in sources]
        if args.dry_run_only:
            out += ["", dry_runs(configs, sources, args.cores, scratch)]
        else:
            config = configs[0]
            out.append(f"config: {config}; --cores {args.cores}; data: "
                       + (f"copied from {args.data_from}" if args.data_from else "prepared by each run"))
            warm_up()
            runs = [run_workflow(s, config, args.cores, scratch, args.data_from) for s in sources]
            for run in runs:
                out += [""] + report_run(run)
            out += ["", "Per job: start-up = process start to first work (`ready - started`); work = `finished - "
                    "ready`; exit = the verb's return to its shell's exit (interpreter shutdown); Snakemake = the rest "
                    "of the job's span (outputs marked incomplete -> last metadata record written): starting the "
                    "shell, and after it exited the output checks and metadata. job-s = the jobs' spans; share = of "
                    "the run's job-seconds. Waiting for a free core is in none of them."]
            if len(runs) == 1:
                out += ["", "Per rule:", "", single_table(runs[0], "rule"),
                        "", "Per stage (rules grouped by lmc verb):", "", single_table(runs[0], "stage")]
            else:
                out += ["", "Per rule, new (current) against base (baseline):", "",
                        side_by_side(runs[0], runs[1], "rule"),
                        "", "Per stage (rules grouped by the lmc verbs they run):", "",
                        side_by_side(runs[0], runs[1], "stage")]
            out += ["", "Totals:", "", totals_table(runs, args.cores)]
        out.append(f"\nload average at the end: {load_average()}")
    finally:
        if not args.keep:
            if tree is not None:
                remove_worktree(tree)
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            out.append(f"kept: {scratch}" + (f" (remove the worktree with `git worktree remove --force {tree}`)"
                                              if tree else ""))
        print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
