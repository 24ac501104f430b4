"""How many CPUs this process may use, and thread pools sized to it.

torch and OpenMP start one thread per core they see; in a pod limited to 2 CPUs on a 64-core node
that is 64 spinning threads. The limit is the cgroup's CPU quota (what a Kubernetes CPU limit
becomes), else the CPUs this process is pinned to.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _quota(cgroup: Path) -> float | None:
    """CPUs the cgroup grants (v2 cpu.max, v1 cfs quota / period); None when unlimited or unknown."""
    v2 = cgroup / "cpu.max"
    if v2.is_file():
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    v1_quota, v1_period = cgroup / "cpu" / "cpu.cfs_quota_us", cgroup / "cpu" / "cpu.cfs_period_us"
    if v1_quota.is_file() and v1_period.is_file():
        quota = int(v1_quota.read_text())
        return None if quota <= 0 else quota / int(v1_period.read_text())
    return None


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """Whole CPUs this process may use: the cgroup quota rounded up, at most the CPUs it is pinned to."""
    pinned = len(os.sched_getaffinity(0))
    quota = _quota(cgroup)
    return pinned if quota is None else max(1, min(pinned, math.ceil(quota)))


def size_thread_pools() -> int:
    """Thread variables (unless set by hand) and torch's pools sized to `available_cpus()`; before
    torch is imported the variables are enough, after it torch is told directly."""
    import sys

    cpus = available_cpus()
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(cpus))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return cpus
