"""Where a task's time goes: start-up (interpreter, imports, model loads) against its work.

A stage calls `work_begins()` once its imports and models are loaded. When the environment names a
file in TRACKREC_TASK_TIMING (`trackrec run` does), the process writes its start-up seconds there
as it exits; a task that never calls it counts whole as start-up.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path

TIMING_ENV = "TRACKREC_TASK_TIMING"
_work_began: list[float] = []


def process_age() -> float:
    """Seconds since this process started, interpreter start-up included (Linux /proc)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time in clock ticks after boot
    return float(Path("/proc/uptime").read_text().split()[0]) - started


def work_begins() -> None:
    """Mark the end of start-up; later calls in the same process change nothing."""
    if not _work_began:
        _work_began.append(process_age())


def _write_record() -> None:
    target = os.environ.get(TIMING_ENV)
    if target:
        age = process_age()
        startup = _work_began[0] if _work_began else age
        Path(target).write_text(json.dumps({"startup_seconds": startup, "process_seconds": age}))


atexit.register(_write_record)
