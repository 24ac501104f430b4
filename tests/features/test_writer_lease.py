"""One writer at a time (trackrec/features/lease.py), with real processes racing on a real Feast
store: the S3 registry (moto's server) and Debian's redis-server (tests/faults.py), or SQLite. Each
race starts its processes at one barrier, after their imports."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from tests.faults import cutting_proxy, redis_server
from tests.features.test_publish import DIM, embeddings
from trackrec.features import arms, lease, reading, versions
from trackrec.features.offline import read_batches
from trackrec.features.reading import open_repo
from trackrec.features.store import StoreConfig, StoreError, open_store

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no lock of this one's threads copied


@pytest.fixture
def redis():
    with redis_server() as server:
        yield server


def fresh_bucket(s3) -> str:
    """A bucket of its own: moto's state outlives its server, so one test's registry would be the next's."""
    bucket = f"features-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_store(tmp_path, s3, redis):
    """Where a cluster's pods meet: the registry and offline rows on S3, the online rows in Redis;
    pod(name) is one pod's store config (its own repo folder)."""
    bucket = fresh_bucket(s3)
    shared = {"registry": f"s3://{bucket}/registry.db", "offline": f"s3://{bucket}/rows"}
    shared |= {"s3_endpoint": s3.meta.endpoint_url, "online": "redis", "redis": redis.url, "dim": DIM}
    return lambda name: StoreConfig(repo=str(tmp_path / name), **shared)


def published(config: StoreConfig, *names: str, users=range(1, 6)) -> None:
    for seed, name in enumerate(names, start=1):
        versions.publish(embeddings(users, seed=seed), name, open_store(config), progress=False)


def raced(*calls) -> list:
    """Run each (target, args) as target(barrier, queue, *args) in its own process, all released at
    once; the values they put on the queue."""
    barrier, queue = SPAWN.Barrier(len(calls)), SPAWN.Queue()
    processes = [SPAWN.Process(target=target, args=(barrier, queue, *args)) for target, args in calls]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0] * len(processes)  # its traceback is above
    return [queue.get(timeout=10) for _ in processes]


def assigning(barrier, queue, config: StoreConfig, actor: str, names: list[str]) -> None:
    os.environ["TRACKREC_ACTOR"] = actor
    store = open_store(config)
    barrier.wait()
    for name in names:
        arms.assign(store, "control", name)
    queue.put(actor)


def test_two_pods_assigning_one_arm_on_the_s3_registry_lose_no_history_entry(s3_store):
    published(s3_store("setup"), "v1", "v2", "v3", "v4")
    raced(
        (assigning, (s3_store("pod-a"), "pod-a", ["v1", "v2"] * 5)),
        (assigning, (s3_store("pod-b"), "pod-b", ["v3", "v4"] * 5)),
    )
    log = arms.history(open_store(s3_store("reader")), "control")
    assert len(log) == 20  # each change read the registry the other pod last wrote
    for pod, names in {"pod-a": ["v1", "v2"] * 5, "pod-b": ["v3", "v4"] * 5}.items():
        assert [e["version"] for e in log if e["by"] == pod] == names


def pruning(barrier, queue, config: StoreConfig, rounds: int) -> None:
    store = open_store(config)
    barrier.wait()
    queue.put([versions.prune(store, keep=1) for _ in range(rounds)])


def assigning_what_remains(barrier, queue, config: StoreConfig, names: list[str]) -> None:
    store = open_store(config)
    barrier.wait()
    for name in names:
        try:
            arms.assign(store, "candidate", name)
        except StoreError as error:  # pruned first: refused, never pointed at
            assert "is not a complete published version" in str(error)
    queue.put(names)


def test_prune_racing_assign_never_leaves_an_arm_naming_a_deleted_version(s3_store):
    """prune deletes the oldest last, assign goes oldest first: unserialised, the arm moved to v2
    after prune had decided to delete it."""
    names = [f"v{i}" for i in range(1, 9)]
    published(s3_store("setup"), *names)
    arms.assign(open_store(s3_store("setup")), "control", "v8")
    raced((pruning, (s3_store("pod-a"), 3)), (assigning_what_remains, (s3_store("pod-b"), names[1:7])))
    store = open_store(s3_store("reader"))
    listed = versions.listing(store)["arms"]
    for arm in listed:
        for name in [arm["version"], *arm["rollback"]]:
            assert versions.is_published(store, name), (arm, name)
    if "candidate" in {arm["arm"] for arm in listed}:  # assign went first at least once
        assert reading.read(open_repo(s3_store("reader").repo), [1], arm="candidate").model_version.notna().all()


def publishing(barrier, queue, config: StoreConfig, table: str) -> None:
    store = open_store(config)
    barrier.wait()
    try:
        versions.publish(versions.parquet_chunks(table), "v1", store, progress=False)
        queue.put((table, "ok"))
    except StoreError as error:
        queue.put((table, str(error)))


def test_one_version_published_twice_at_once_is_written_once_from_one_table(tmp_path, redis):
    config = StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=redis.url, dim=DIM)
    tables = {}
    for seed in (1, 2):
        tables[str(tmp_path / f"t{seed}.parquet")] = table = embeddings(range(1, 3001), seed=seed)
        table.to_parquet(tmp_path / f"t{seed}.parquet")
    results = dict(raced(*[(publishing, (config, path)) for path in tables]))
    winner = next(path for path, outcome in results.items() if outcome == "ok")
    loser = next(path for path in tables if path != winner)
    assert results[loser] == "version 'v1' is already published; readers may be on it: publish a new version"
    read = reading.read(open_repo(config.repo), list(range(1, 3001)), version="v1")
    np.testing.assert_array_equal(np.stack(read.embedding), np.stack(tables[winner].embedding))
    assert (read.as_of == tables[winner].as_of).all()
    offline = pd.concat(read_batches(f"{config.offline_root}/v1.parquet"))
    np.testing.assert_array_equal(np.stack(offline.embedding), np.stack(tables[winner].embedding))


HOLDER = """
import sys, time
from trackrec.features import lease
from trackrec.features.store import StoreConfig, open_store

lease.TTL_S = 1
config = StoreConfig(repo=sys.argv[1], online=sys.argv[2], redis=sys.argv[3], dim={dim})
with lease.writer(open_store(config), "prune"):
    print("held", flush=True)
    time.sleep(600)
"""


def holding(config: StoreConfig) -> subprocess.Popen:
    """A writer in another process, holding the lease (expiring 1 s after its last renewal)."""
    script = textwrap.dedent(HOLDER).replace("{dim}", str(DIM))
    env = os.environ | {"TRACKREC_ACTOR": "alice@pod-1"}
    args = [sys.executable, "-c", script, config.repo, config.online, config.redis]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline() == "held\n"
    return child


@pytest.fixture(params=["sqlite", "redis"])
def any_store(request, tmp_path) -> StoreConfig:
    if request.param == "sqlite":
        return StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    return StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=request.getfixturevalue("redis").url, dim=DIM)


def test_a_second_writer_waits_a_bounded_time_then_is_refused_naming_the_first(any_store, monkeypatch):
    published(any_store, "v1")
    child = holding(any_store)
    monkeypatch.setattr(lease, "WAIT_S", 1)
    began = time.monotonic()
    busy = r"cannot assign control: the feature store is being changed by alice@pod-1 \(prune, since 20.*\); waited 1 s"
    with pytest.raises(StoreError, match=busy):
        arms.assign(open_store(any_store), "control", "v1")
    assert time.monotonic() - began >= 1
    child.kill()  # killed holding it: the kernel frees a flock, a Redis lease expires
    child.wait()
    monkeypatch.setattr(lease, "WAIT_S", 10)
    began = time.monotonic()
    assert arms.assign(open_store(any_store), "control", "v1")["changed"]
    assert time.monotonic() - began < 5


STALLED = """
import sys
from trackrec.features import arms, lease
from trackrec.features.store import StoreConfig, open_store

lease.TTL_S = 1
store = open_store(StoreConfig(repo=sys.argv[1], online="redis", redis=sys.argv[2], dim={dim}))
with lease.writer(store, "assign control"):
    print("held", flush=True)
    sys.stdin.readline()  # stopped (SIGSTOP) here, then continued
    try:
        arms.assign(store, "control", "v2")
    except Exception as error:
        print(error, flush=True)
"""


def test_a_writer_stalled_past_its_lease_writes_nothing_once_another_took_over(tmp_path, redis):
    config = StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=redis.url, dim=DIM)
    published(config, "v1", "v2")
    script = textwrap.dedent(STALLED).replace("{dim}", str(DIM))
    child = subprocess.Popen(
        [sys.executable, "-c", script, config.repo, redis.url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "held\n"
    child.send_signal(signal.SIGSTOP)  # a stalled pod: no renewal
    arms.assign(open_store(config), "control", "v1")  # waits out its lease, then writes
    child.send_signal(signal.SIGCONT)
    out, _ = child.communicate("\n", timeout=60)
    assert "assign control: the writer lease expired while this writer stalled" in out
    assert [e["version"] for e in arms.history(open_store(config), "control")] == ["v1"]


def test_a_registry_write_cut_mid_request_changes_nothing_and_frees_the_lease(tmp_path, s3, redis, monkeypatch):
    bucket = fresh_bucket(s3)
    with cutting_proxy(s3.meta.endpoint_url) as proxy:
        config = StoreConfig(
            repo=str(tmp_path / "repo"), registry=f"s3://{bucket}/registry.db", offline=f"s3://{bucket}/rows",
            s3_endpoint=proxy.url, online="redis", redis=redis.url, dim=DIM,
        )  # fmt: skip
        published(config, "v1", "v2")
        arms.assign(open_store(config), "control", "v1")
        registry = s3.head_object(Bucket=bucket, Key="registry.db")["ContentLength"]
        proxy.cut_requests_over(registry // 2 + 1500)  # every GET passes; a whole registry never does
        with pytest.raises(Exception, match="(?i)connection"):
            arms.assign(open_store(config), "control", "v2")
        assert proxy.cuts >= 1
        proxy.cut_requests_over(None)
        monkeypatch.setattr(lease, "WAIT_S", 0)  # the failed writer let go: no wait
        assert [e["version"] for e in arms.history(open_store(config), "control")] == ["v1"]
        assert arms.assign(open_store(config), "control", "v2")["previous"] == "v1"
        assert s3.head_object(Bucket=bucket, Key="registry.db")["ContentLength"] > registry
