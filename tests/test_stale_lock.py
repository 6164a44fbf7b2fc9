"""workflow/scripts/clear_stale_lock.py: a lock a killed Snakemake left is cleared, a live run's lock is kept."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow" / "scripts" / "clear_stale_lock.py"

spec = importlib.util.spec_from_file_location("clear_stale_lock", SCRIPT)
assert spec is not None and spec.loader is not None
clear_stale_lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clear_stale_lock)

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")


def fake_lock(workdir: Path) -> Path:
    """What a SIGKILLed Snakemake leaves: .snakemake/locks/0.{input,output}.lock listing the files it locked."""
    locks = workdir / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text(f"{workdir}/resources/datasets/digits.safetensors\n")
    (locks / "0.output.lock").write_text(f"{workdir}/results/tables/barriers.csv\n")
    return locks


def run_script(workdir: Path) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), str(workdir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # one line saying what it did
    return lines[0]


@pytest.fixture
def fake_snakemake(tmp_path: Path) -> Iterator[Path]:
    """An executable named `snakemake` that only sleeps, started the way the console script .venv/bin/snakemake
    is: a `#!python` script, so its command line is `python /.../snakemake ARGS` like a real run's."""
    program = tmp_path / "bin" / "snakemake"
    program.parent.mkdir()
    program.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    program.chmod(0o755)
    yield program


def start(program: Path, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([str(program), *args], cwd=cwd)
    # exec is done when Popen returns; wait for the state that matters, /proc showing the interpreter's command line
    # (a minute is only a bound against a hang, not a speed the machine must reach)
    deadline = time.monotonic() + 60
    while not any(part.endswith(b"/snakemake") for part in Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")):
        assert time.monotonic() < deadline, "the fake snakemake never showed its command line"
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=30)


def test_a_lock_without_a_snakemake_process_is_cleared(tmp_path: Path) -> None:
    locks = fake_lock(tmp_path)
    line = run_script(tmp_path)
    assert line.startswith("clear_stale_lock: cleared a stale lock") and "0.input.lock" in line
    assert not list(locks.iterdir())


def test_no_lock_is_nothing_to_do(tmp_path: Path) -> None:
    assert run_script(tmp_path).startswith("clear_stale_lock: nothing to do")
    assert not (tmp_path / ".snakemake").exists()  # creates nothing


def test_a_lock_of_a_running_snakemake_is_kept_and_its_pid_named(tmp_path: Path, fake_snakemake: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    locks = fake_lock(workdir)
    proc = start(fake_snakemake, workdir, "--cores", "2")
    try:
        line = run_script(workdir)
    finally:
        stop(proc)
    assert line == f"clear_stale_lock: left the lock: Snakemake process {proc.pid} is running in {workdir.resolve()}"
    assert sorted(p.name for p in locks.iterdir()) == ["0.input.lock", "0.output.lock"]
    assert run_script(workdir).startswith("clear_stale_lock: cleared a stale lock")  # once it is gone


@pytest.mark.parametrize("form", ["-d", "--directory", "--directory=", "-d relative"])
def test_a_snakemake_started_elsewhere_with_directory_keeps_the_lock(tmp_path: Path, fake_snakemake: Path,
                                                                     form: str) -> None:
    workdir = tmp_path / "work"
    elsewhere = tmp_path / "elsewhere"
    workdir.mkdir()
    elsewhere.mkdir()
    locks = fake_lock(workdir)
    args = {"-d": ["-d", str(workdir)], "--directory": ["--directory", str(workdir)],
            "--directory=": [f"--directory={workdir}"], "-d relative": ["-d", "../work"]}[form]
    proc = start(fake_snakemake, elsewhere, "-s", str(REPO / "Snakefile"), *args, "--cores", "2")
    try:
        line = run_script(workdir)
    finally:
        stop(proc)
    assert f"Snakemake process {proc.pid} is running in {workdir.resolve()}" in line
    assert len(list(locks.iterdir())) == 2


def test_a_snakemake_in_another_directory_does_not_keep_the_lock(tmp_path: Path, fake_snakemake: Path) -> None:
    workdir = tmp_path / "work"
    other = tmp_path / "other"
    workdir.mkdir()
    other.mkdir()
    locks = fake_lock(workdir)
    proc = start(fake_snakemake, other, "-d", str(other), "--cores", "2")  # e.g. another study's run
    try:
        line = run_script(workdir)
    finally:
        stop(proc)
    assert line.startswith("clear_stale_lock: cleared a stale lock")
    assert not list(locks.iterdir())


def test_a_symlinked_workdir_is_the_same_directory(tmp_path: Path, fake_snakemake: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    link = tmp_path / "link"
    link.symlink_to(workdir)
    fake_lock(workdir)
    proc = start(fake_snakemake, workdir)
    try:
        line = run_script(link)
    finally:
        stop(proc)
    assert f"Snakemake process {proc.pid} is running" in line


@pytest.mark.parametrize("argv,expected", [
    (["/v/bin/python", "/v/bin/snakemake", "--cores", "2"], ["--cores", "2"]),  # the console script
    (["snakemake", "-n"], ["-n"]),
    (["/usr/bin/python3.11", "-m", "snakemake", "-d", "x"], ["-d", "x"]),
    (["python3", "-u", "-X", "dev", "-msnakemake"], []),
    (["python3", "-c", "import time; time.sleep(30)", "snakemake"], None),  # a command that only mentions it
    (["python3", "workflow/scripts/clear_stale_lock.py", "."], None),
    (["python3", "-m", "pytest", "-k", "snakemake"], None),
    (["/bin/sh", "-c", "python -m permlmc train-seeds"], None),
    (["/v/bin/python", "-m", "permlmc", "search-pair", "--out", "results/snakemake"], None),
    ([], None),
])
def test_which_command_lines_run_snakemake(argv: list[str], expected: list[str] | None) -> None:
    assert clear_stale_lock.snakemake_arguments(argv) == expected


def test_directory_arguments() -> None:
    args = ["-s", "S", "-d", "a", "-db", "--directory", "c", "--directory=d", "-n", "--", "-d", "target"]
    assert clear_stale_lock.directory_arguments(args) == ["a", "b", "c", "d"]


def test_the_script_imports_only_the_standard_library() -> None:
    code = (f"import sys; sys.argv = ['x', {str(REPO)!r}]; import runpy; runpy.run_path({str(SCRIPT)!r}); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'snakemake', 'permlmc', 'yaml'}); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
