"""Timing lines for the ``python -m permlmc`` processes of a revision without ``LMC_TIMINGS`` support.

``bench/workflow_speed.py --baseline REV`` puts this folder first on ``PYTHONPATH`` for the baseline run only
(every process of that run imports it at start-up: Snakemake itself, its jobs, anything they start). In any
process that is not ``python -m permlmc`` it does nothing but read its own command line. In a ``python -m permlmc``
process it appends, at exit, the line ``src/permlmc/cli/timing.py`` writes in the current code to the file named by
``LMC_BASELINE_TIMINGS``:

- ``started``: when the operating system started the process, read from ``/proc/self/stat`` exactly as
  ``permlmc.cli.timing.process_start`` does (elsewhere: when this module was imported);
- ``ready``: when ``argparse.ArgumentParser.parse_args`` first returned. The old CLI imports torch at module
  import, before it parses its arguments, so this is after the interpreter and torch were loaded; the modules a
  verb's handler imports itself (``permlmc.commands`` and what it pulls in) come after it and count as work, which
  flatters the old code's start-up slightly;
- ``finished``: when the exit handler registered at that first ``parse_args`` runs (``atexit``: after the verb
  returned; exit handlers registered later, by the verb's own imports, run before it and count as work);
- ``status``: ``error`` when an uncaught exception reached ``sys.excepthook``, otherwise ``ok`` (an explicit
  ``SystemExit`` is not seen here; Snakemake's exit status says whether the run succeeded);
- ``verb``: the parsed namespace's ``verb``; ``argv``: ``sys.argv[1:]``; ``lmc_file``: ``permlmc.__file__`` at exit,
  which shows which checkout's code the job ran; ``source``: ``"sitecustomize"``.

A ``sitecustomize`` further down ``sys.path`` is shadowed by this one (the project's virtual environment has none).
"""

from __future__ import annotations

import os
import sys
import time

_IMPORTED = time.time()


def _command_line() -> list[str]:
    argv = getattr(sys, "orig_argv", None)
    if argv:
        return list(argv)
    try:
        with open("/proc/self/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def _is_lmc(argv: list[str]) -> bool:
    """True for ``python [options] -m permlmc ...`` (the interpreter's own options, before ``-m``)."""
    for index, arg in enumerate(argv[1:], start=1):
        if arg == "-m":
            return index + 1 < len(argv) and argv[index + 1] in ("permlmc", "lmc")  # today's name, a baseline's
        if arg in ("-c", "-") or not arg.startswith("-"):
            return False
    return False


def _process_start() -> float:
    """When this process started (seconds since the epoch): ``permlmc.cli.timing.process_start`` of the current tree,
    loaded from its file (it uses the standard library only), so both runs read the clock the same way."""
    from importlib.util import module_from_spec, spec_from_file_location

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "permlmc", "cli", "timing.py")
    spec = spec_from_file_location("_lmc_timing_of_the_benchmark", path)
    if spec is None or spec.loader is None:
        return _IMPORTED
    timing = module_from_spec(spec)
    spec.loader.exec_module(timing)
    return float(timing.process_start())


def _install(path: str) -> None:
    import argparse
    import atexit
    import json

    started = _process_start()
    state: dict[str, object] = {"ready": None, "verb": None, "status": "ok"}

    def record() -> None:
        lmc = sys.modules.get("permlmc") or sys.modules.get("lmc")
        line = json.dumps({"verb": state["verb"], "pid": os.getpid(), "started": started, "ready": state["ready"],
                           "finished": time.time(), "status": state["status"], "argv": sys.argv[1:],
                           "lmc_file": getattr(lmc, "__file__", None), "source": "sitecustomize"})
        with open(path, "a") as handle:  # one short write in append mode, as permlmc.cli.timing.record
            handle.write(line + "\n")

    original_parse_args = argparse.ArgumentParser.parse_args

    def parse_args(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        namespace = original_parse_args(self, *args, **kwargs)
        if state["ready"] is None:
            state["ready"] = time.time()
            state["verb"] = getattr(namespace, "verb", None)
            atexit.register(record)
        return namespace

    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]

    original_hook = sys.excepthook

    def excepthook(kind, value, traceback):  # type: ignore[no-untyped-def]
        state["status"] = "error"
        original_hook(kind, value, traceback)

    sys.excepthook = excepthook


_PATH = os.environ.get("LMC_BASELINE_TIMINGS")
if _PATH and _is_lmc(_command_line()):
    _install(_PATH)
