"""Where a task's time goes: start-up against its work, and start-up in three parts: the interpreter
and KFP's executor until the task first imports trackrec, the imports after that (ours and the
libraries'), and model loads.

A stage calls `work_begins()` once its imports and models are loaded; `trackrec` marks its own first
import; `loading()` wraps a model load. When the environment names a file in TRACKREC_TASK_TIMING
(`trackrec run` does), the process writes its seconds there as it exits; a task that never calls
`work_begins` counts whole as start-up.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import time
from pathlib import Path

TIMING_ENV = "TRACKREC_TASK_TIMING"
_work_began: list[float] = []
_marks = {"trackrec_imported": None, "model_load": 0.0}  # process age at trackrec's import; seconds loading


def process_age() -> float:
    """Seconds since this process started, interpreter start-up included (Linux /proc)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time in clock ticks after boot
    return float(Path("/proc/uptime").read_text().split()[0]) - started


def unsplit(startup: float) -> dict[str, float]:
    """Start-up parts where the task reported none: all of it before trackrec's import."""
    return {"python_kfp": startup, "imports": 0.0, "model_load": 0.0}


def _timed() -> bool:
    """A task `trackrec run` times; elsewhere (a CLI call, a bench, no /proc) nothing reads /proc."""
    return bool(os.environ.get(TIMING_ENV))


def work_begins() -> None:
    """Mark the end of start-up; later calls in the same process change nothing."""
    if _timed() and not _work_began:
        _work_began.append(process_age())


def trackrec_imported() -> None:
    """Mark the end of the interpreter's and KFP's part (trackrec/__init__.py calls it) in a timed
    task only: elsewhere (no /proc, say) importing trackrec reads nothing."""
    if _timed():
        _marks["trackrec_imported"] = process_age()


@contextlib.contextmanager
def loading():
    """Count the time inside as a model load (the start-up's third part, before work begins)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if _timed() and not _work_began:
            _marks["model_load"] += time.perf_counter() - start


def _write_record() -> None:
    if _timed():
        target = os.environ[TIMING_ENV]
        age = process_age()
        startup = _work_began[0] if _work_began else age
        before = min(_marks["trackrec_imported"] or startup, startup)
        parts = {"python_kfp": before, "imports": max(startup - before - _marks["model_load"], 0.0)}
        parts["model_load"] = startup - before - parts["imports"]
        Path(target).write_text(json.dumps({"startup_seconds": startup, "process_seconds": age, "startup": parts}))


atexit.register(_write_record)
