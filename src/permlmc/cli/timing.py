"""Per-process timing of ``python -m permlmc`` jobs: how long start-up took against the work itself.

When the environment variable ``LMC_TIMINGS`` names a file, every command appends one JSON line to it:
``{"verb", "pid", "started", "ready", "finished", "status", "argv"}``, times in seconds since the epoch.
``started`` is when the operating system started the process (Linux: ``/proc/self/stat``; elsewhere when this
module was imported), ``ready`` when the interpreter and every module the verb needs were loaded, ``finished`` when
the verb returned; ``argv`` is the command's arguments (``sys.argv[1:]``), which tell apart jobs of one verb.
``bench/workflow_speed.py`` reads these lines to split a workflow's job-seconds into start-up and work.
"""

from __future__ import annotations

import json
import os
import sys
import time

_IMPORTED = time.time()


def process_start() -> float:
    """When this process started (seconds since the epoch)."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22: start, in ticks after boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED


def record(verb: str, ready: float, status: str) -> None:
    """Append this process's timing line to ``$LMC_TIMINGS`` (nothing when it is unset)."""
    path = os.environ.get("LMC_TIMINGS")
    if not path:
        return
    line = json.dumps({"verb": verb, "pid": os.getpid(), "started": process_start(), "ready": ready,
                       "finished": time.time(), "status": status, "argv": sys.argv[1:]})
    with open(path, "a") as handle:  # one short write in append mode: lines of parallel jobs do not interleave
        handle.write(line + "\n")
