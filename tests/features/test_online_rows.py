"""A version's online rows checked user by user, on a real redis-server that loses rows, fills up
(maxmemory, noeviction) and is killed (tests/faults.py): a re-run writes back every lost row, no arm
moves to a version whose rows are gone, and a publish that fills Redis takes its rows out again."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.faults import redis_server
from tests.features.test_publish import DIM, KILLED_PUBLISH, embeddings
from trackrec.cli import app
from trackrec.features import arms, definitions, reading, versions
from trackrec.features.config import FeaturesConfig
from trackrec.features.reading import open_repo
from trackrec.features.store import StoreConfig, StoreError, open_store
from trackrec.stages.outputs import Embeddings
from trackrec.stages.publish import publish


@pytest.fixture
def redis():
    with redis_server() as server:
        yield server


def redis_config(tmp_path, server) -> StoreConfig:
    return StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=server.url, dim=DIM)


def user_keys(config: StoreConfig, users) -> list[bytes]:
    """The Redis keys Feast keeps each user's rows under (feast/infra/online_stores/helpers.py:25-35)."""
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return [
        _redis_key(config.project, EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=int(u))]), 3)
        for u in users
    ]


def view_fields(server, view: str) -> int:
    """How many users hold a row of `view` in Redis (its `_ts:` field: redis.py:470-490)."""
    client = server.client()
    return sum(client.hexists(key, f"_ts:{view}") for key in client.scan_iter(_type="HASH"))


def test_a_rerun_writes_back_every_row_redis_lost_not_only_a_sample(tmp_path, redis):
    """The old check probed 10 users (the first and last five): Redis kept those and lost the 4,989
    others, and the re-run said already_published and restored nothing."""
    config = redis_config(tmp_path, redis)
    (tmp_path / "emb").mkdir()
    table = embeddings(range(1, 5001), seed=1)
    table.to_parquet(Embeddings(tmp_path / "emb").table)
    first = publish(tmp_path / "emb", FeaturesConfig(store=config), tmp_path / "out1")
    kept = [*range(1, 6), 2500, *range(4996, 5001)]
    lost = [u for u in range(1, 5001) if u not in kept]
    assert redis.client().delete(*user_keys(config, lost)) == 4989
    assert versions.online_missing(open_store(config), first["version"]) == 4989

    again = publish(tmp_path / "emb", FeaturesConfig(store=config), tmp_path / "out2")
    assert again["already_published"] and again["restored"] == {"version": first["version"], "users": 4989}
    read = reading.read(open_repo(config.repo), list(range(1, 5001)))
    assert read.model_version.notna().all()
    np.testing.assert_array_equal(np.stack(read.embedding), np.stack(table.embedding))


def test_no_arm_moves_to_a_version_whose_rows_are_gone(tmp_path, redis):
    config = redis_config(tmp_path, redis)
    for seed, name in enumerate(["v1", "v2"], start=1):
        versions.publish(embeddings(range(1, 21), seed=seed), name, open_store(config), progress=False)
    arms.assign(open_store(config), "control", "v1")
    arms.assign(open_store(config), "control", "v2")
    arms.assign(open_store(config), "candidate", "v1")
    redis.kill()
    redis.start()  # an empty Redis: the registry still says both versions are complete
    versions.restore(open_store(config), "v2", progress=False)
    gone = "'v1': the online store does not serve 20 of its 20 users as published .* restore --version v1"
    with pytest.raises(StoreError, match=gone):
        arms.rollback(open_store(config))
    with pytest.raises(StoreError, match=gone):
        arms.assign(open_store(config), "candidate", "v1")  # what it reads already: still refused
    with pytest.raises(StoreError, match=gone):
        arms.promote(open_store(config))
    assert arms.arm_version(open_store(config), "control") == "v2"
    assert [e["version"] for e in arms.history(open_store(config), "control")] == ["v1", "v2"]
    versions.restore(open_store(config), "v1", progress=False)
    assert arms.rollback(open_store(config))["version"] == "v1"


def test_a_publish_that_fills_redis_takes_its_rows_out_and_says_so_in_one_line(tmp_path, redis):
    config = redis_config(tmp_path, redis)
    versions.publish(embeddings(range(1, 101), seed=1), "v1", open_store(config), progress=False)
    arms.assign(open_store(config), "control", "v1")
    redis.fill_limit(headroom=200_000)  # about 600 users of a version more
    embeddings(range(1, 3001), seed=2).to_parquet(tmp_path / "v2.parquet")
    store_file = tmp_path / "store.yaml"
    store_file.write_text(f"repo: {config.repo}\nonline: redis\nredis: {redis.url}\ndim: {DIM}\n")
    result = CliRunner().invoke(
        app, ["features", "publish", "--embeddings", str(tmp_path / "v2.parquet"), "--version", "v2"],
        env={"TRACKREC_STORE": str(store_file), "COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert (
        result.output.count("\n") == 1 and "Traceback" not in result.output and "OutOfMemoryError" not in result.output
    )
    assert "publish v2: the online store redis is full (maxmemory reached" in result.output
    assert "its rows written so far were removed" in result.output
    assert view_fields(redis, definitions.view_name("v2")) == 0 and redis.client().dbsize() == 100  # v1's users
    assert versions.listing(open_store(config))["versions"][0]["version"] == "v1"  # no attempt left behind
    summary = versions.publish(embeddings(range(1, 101), seed=3), "v3", open_store(config), progress=False)
    assert summary["users"] == 100 and versions.online_missing(open_store(config), "v3") == 0


def test_prune_sweeps_a_killed_publishs_rows_out_of_a_full_redis(tmp_path, redis):
    """A publish killed midway leaves its rows; Redis, full, refuses every write: prune still takes
    the writer lease, removes the incomplete version's rows, and the next publish fits."""
    config = redis_config(tmp_path, redis)
    versions.publish(embeddings(range(1, 101), seed=1), "v1", open_store(config), progress=False)
    arms.assign(open_store(config), "control", "v1")
    embeddings(range(1, 2501), seed=2).to_parquet(tmp_path / "v2.parquet")
    script = textwrap.dedent(KILLED_PUBLISH).replace("{dim}", str(DIM))
    script = script.replace("dim=", f"online='redis', redis='{redis.url}', dim=")
    script = "from trackrec.features import lease\nlease.TTL_S = 1\n" + script  # its lease outlives it 1 s
    assert subprocess.run([sys.executable, "-c", script, config.repo, str(tmp_path / "v2.parquet")]).returncode == 9
    assert view_fields(redis, definitions.view_name("v2")) == 1000  # one chunk written before the kill
    redis.client().config_set("maxmemory", redis.used_memory() - 10_000)  # over the limit now
    with pytest.raises(StoreError, match="the online store redis is full"):
        versions.publish(embeddings(range(1, 11), seed=3), "v3", open_store(config), progress=False)
    assert versions.prune(open_store(config), keep=5) == ["v2"]  # incomplete: swept whatever keep says
    assert view_fields(redis, definitions.view_name("v2")) == 0
    assert versions.publish(embeddings(range(1, 11), seed=3), "v3", open_store(config), progress=False)["users"] == 10
