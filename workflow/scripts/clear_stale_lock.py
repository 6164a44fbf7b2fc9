#!/usr/bin/env python3
"""Remove the lock a killed Snakemake left in WORKDIR, but only if no Snakemake process works there.

    python workflow/scripts/clear_stale_lock.py WORKDIR

Snakemake writes WORKDIR/.snakemake/locks/N.{input,output}.lock when it starts and removes them when it ends. A
SIGKILL (or the OOM killer, or a lost login session) leaves them behind and the next run stops with "Directory
cannot be locked". `snakemake --unlock` clears them unconditionally, also under a run that is still alive; this
script clears them only when /proc shows no running Snakemake process whose working directory, or whose
`-d`/`--directory` argument, resolves to WORKDIR. `make run` and `make dry-run` call it before Snakemake.

It prints one line saying what it did and exits 0 (also when it leaves a lock: Snakemake then reports the lock
itself). Standard library only, Linux (/proc); elsewhere it leaves the lock alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")
# Interpreter options that take a separate argument (`python -W error -X dev script`).
PYTHON_OPTIONS_WITH_ARGUMENT = {"-W", "-X", "-Q"}


def is_python(program: str) -> bool:
    name = os.path.basename(program)
    return name.startswith(("python", "pypy"))


def snakemake_arguments(argv: list[str]) -> list[str] | None:
    """The arguments given to Snakemake if `argv` runs Snakemake, else None.

    Recognised: the console script (`snakemake ...`, `/venv/bin/python /venv/bin/snakemake ...`) and the module
    (`python -m snakemake ...`)."""
    if not argv:
        return None
    if os.path.basename(argv[0]) == "snakemake":
        return argv[1:]
    if not is_python(argv[0]):
        return None
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m":
            return argv[i + 2:] if i + 1 < len(argv) and argv[i + 1] == "snakemake" else None
        if arg.startswith("-m"):
            return argv[i + 1:] if arg[2:] == "snakemake" else None
        if arg == "-c" or arg.startswith("-c") or arg == "-":
            return None  # a command string or stdin, not a program named snakemake
        if arg in PYTHON_OPTIONS_WITH_ARGUMENT:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return argv[i + 1:] if os.path.basename(arg) == "snakemake" else None
    return None


def directory_arguments(args: list[str]) -> list[str]:
    """Values of -d/--directory among Snakemake's arguments: `-d DIR`, `-dDIR`, `--directory DIR|=DIR`."""
    found = []
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-d", "--directory"):
            if i + 1 < len(args):
                found.append(args[i + 1])
        elif arg.startswith("--directory="):
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-d") and not arg.startswith("--") and len(arg) > 2:
            found.append(arg[2:])
    return found


def read_argv(pid: str) -> list[str]:
    raw = (PROC / pid / "cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]] if raw else []


def read_cwd(pid: str) -> str | None:
    try:
        cwd = os.readlink(PROC / pid / "cwd")
    except OSError:
        return None  # another user's process, or gone
    return cwd[: -len(" (deleted)")] if cwd.endswith(" (deleted)") else cwd


def resolve(path: str, base: str | None) -> str | None:
    if not os.path.isabs(path):
        if base is None:
            return None
        path = os.path.join(base, path)
    return os.path.realpath(path)


def snakemake_processes_in(workdir: str) -> Iterator[tuple[int, str]]:
    """(pid, directory) of every other running Snakemake process that works in `workdir` (a real path).

    A process counts if its current directory is `workdir` (Snakemake changes into its `-d` directory right after
    start), or if a `-d` argument, taken relative to its current directory, names `workdir` (the moment before
    that change)."""
    own = os.getpid()
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            argv = read_argv(entry.name)
        except OSError:
            continue  # exited meanwhile
        args = snakemake_arguments(argv)
        if args is None:
            continue
        cwd = read_cwd(entry.name)
        candidates = [cwd] if cwd is not None else []
        candidates += [d for d in (resolve(arg, cwd) for arg in directory_arguments(args)) if d is not None]
        for directory in candidates:
            if os.path.realpath(directory) == workdir:
                yield int(entry.name), directory
                break


def lock_files(lockdir: Path) -> list[Path]:
    try:
        return sorted(p for p in lockdir.iterdir() if p.name.endswith(".lock") and not p.is_dir())
    except FileNotFoundError:
        return []


def clear_stale_lock(workdir: str | os.PathLike[str]) -> str:
    """Remove the stale lock files of `workdir` if no Snakemake runs there; return the line to print."""
    real = os.path.realpath(workdir)
    lockdir = Path(real) / ".snakemake" / "locks"
    locks = lock_files(lockdir)
    if not locks:
        return f"clear_stale_lock: nothing to do, no Snakemake lock in {real}"
    if not PROC.is_dir():
        return f"clear_stale_lock: left the lock in {lockdir}: cannot list processes without /proc"
    running = list(snakemake_processes_in(real))
    if running:
        pid, directory = running[0]
        others = f" (and {len(running) - 1} more)" if len(running) > 1 else ""
        return f"clear_stale_lock: left the lock: Snakemake process {pid}{others} is running in {directory}"
    for lock in locks:
        lock.unlink(missing_ok=True)  # missing: a Snakemake that just finished removed it
    names = ", ".join(lock.name for lock in locks)
    return f"clear_stale_lock: cleared a stale lock in {lockdir} ({names}); no Snakemake process runs in {real}"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0], "\nusage: clear_stale_lock.py WORKDIR", file=sys.stderr)
        return 2
    print(clear_stale_lock(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
