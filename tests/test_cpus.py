"""Thread pools follow the CPU limit: the cgroup quota a Kubernetes limit becomes, else the pinned CPUs."""

import os

from trackrec.cpus import available_cpus


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_rounded_up_and_capped_by_the_pinned_cpus(tmp_path):
    pinned = len(os.sched_getaffinity(0))
    write(tmp_path, "cpu.max", "150000 100000\n")  # a 1.5-CPU limit
    assert available_cpus(tmp_path) == min(2, pinned)
    write(tmp_path, "cpu.max", "6400000 100000\n")  # more than the machine: the pinned CPUs
    assert available_cpus(tmp_path) == pinned
    write(tmp_path, "cpu.max", "max 100000\n")
    assert available_cpus(tmp_path) == pinned


def test_cgroup_v1_quota_and_no_limit(tmp_path):
    write(tmp_path, "cpu/cpu.cfs_quota_us", "100000\n")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert available_cpus(tmp_path) == 1
    write(tmp_path, "cpu/cpu.cfs_quota_us", "-1\n")
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path / "nothing-here") == len(os.sched_getaffinity(0))
