"""Versioned publishing to a real Feast store: SQLite, Debian's redis-server, an S3 offline store."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from trackrec.errors import DataError
from trackrec.features import arms, online_rows, reading, versions
from trackrec.features import offline as offline_files
from trackrec.features.reading import open_repo
from trackrec.features.store import StoreConfig, StoreError, open_store
from trackrec.features.vectors import read_vectors
from trackrec.hashing import sha256_of
from trackrec.stages.outputs import CurrentGenerator, Embeddings

DIM = 8


def embeddings(users, seed: int, dim: int = DIM, as_of: int | None = None) -> pd.DataFrame:
    """One snapshot per user, as of `as_of` (default: later for a larger seed)."""
    rng = np.random.default_rng(seed)
    users = list(users)
    return pd.DataFrame(
        {
            "user_id": users,
            "as_of": 1_000_000 * seed if as_of is None else as_of,
            "reccot": [f"user {u} summary {seed}" for u in users],
            "iteration": seed,
            "embedding": list(rng.standard_normal((len(users), dim)).astype(np.float32)),
        }
    )


def vectors(store, users, **where) -> np.ndarray:
    return np.stack(reading.read(store, users, **where).embedding)


@pytest.fixture(params=["sqlite", "redis"])
def store_config(request, tmp_path):
    if request.param == "sqlite":
        return StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    return StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=request.getfixturevalue("redis_url"), dim=DIM)


def test_a_candidate_version_leaves_the_control_arm_unchanged(store_config):
    v1 = embeddings(range(1, 51), seed=1)
    versions.publish(v1, "v1", open_store(store_config), progress=False)
    arms.assign(open_store(store_config), "control", "v1")
    store = open_repo(store_config.repo)
    before = vectors(store, [1, 7, 50])
    np.testing.assert_allclose(before, np.stack(v1.embedding.iloc[[0, 6, 49]]))

    versions.publish(embeddings(range(1, 51), seed=2), "v2", open_store(store_config), progress=False)
    arms.assign(open_store(store_config), "candidate", "v2")
    np.testing.assert_array_equal(vectors(store, [1, 7, 50]), before)  # control still reads v1
    candidate = reading.read(store, [7], arm="candidate")
    assert candidate.model_version[0] == "v2" and candidate.reccot[0] == "user 7 summary 2"

    assert arms.promote(open_store(store_config)) == {
        "arm": "control",
        "version": "v2",
        "model": None,  # the candidate named no model: none moves with its version
        "previous": "v1",
        "changed": True,
    }
    assert reading.read(store, [7]).model_version[0] == "v2"
    arms.rollback(open_store(store_config))
    np.testing.assert_array_equal(vectors(store, [1, 7, 50]), before)


def test_incremental_publish_refreshes_only_the_given_users(store_config):
    versions.publish(embeddings(range(1, 21), seed=1), "v1", open_store(store_config), progress=False)
    active = embeddings([3, 4], seed=5)
    summary = versions.publish(active, "v2", open_store(store_config), carry_from="v1", progress=False)
    assert summary["rows"] == 22 and summary["carried"] == 20 and summary["users"] == 20  # every older snapshot kept
    store = open_repo(store_config.repo)
    np.testing.assert_array_equal(vectors(store, [3, 9], version="v2")[0], active.embedding[0])  # the newest served
    np.testing.assert_array_equal(vectors(store, [9], version="v2"), vectors(store, [9], version="v1"))
    assert set(reading.read(store, [3, 9], version="v2").model_version) == {"v2"}


KILLED_PUBLISH = """
import os, sys
import pandas as pd
from feast import FeatureStore
from trackrec.features import online_rows, versions
from trackrec.features.store import StoreConfig, open_store

calls = []
original = FeatureStore.write_to_online_store
def dies_after_one_chunk(self, *args, **kwargs):
    if calls:
        os._exit(9)  # no cleanup, no exception handler: as if the pod were killed
    calls.append(1)
    return original(self, *args, **kwargs)
FeatureStore.write_to_online_store = dies_after_one_chunk
config = StoreConfig(repo=sys.argv[1], dim={dim})
versions.publish(pd.read_parquet(sys.argv[2]), "v2", open_store(config), progress=False)
"""


def test_a_publish_killed_midway_leaves_readers_on_a_complete_version_and_a_rerun_completes(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    users = range(1, online_rows.CHUNK * 2 + 501)
    versions.publish(embeddings(users, seed=1), "v1", open_store(config), progress=False)
    arms.assign(open_store(config), "control", "v1")
    store = open_repo(config.repo)
    before = vectors(store, [1, 1500, 2500])

    v2 = embeddings(users, seed=2)
    v2.to_parquet(tmp_path / "v2.parquet")
    script = textwrap.dedent(KILLED_PUBLISH).replace("{dim}", str(DIM))
    child = subprocess.run([sys.executable, "-c", script, config.repo, str(tmp_path / "v2.parquet")])
    assert child.returncode == 9

    store = open_repo(config.repo)
    np.testing.assert_array_equal(vectors(store, [1, 1500, 2500]), before)
    with pytest.raises(StoreError, match="'v2' is not a complete published version"):
        reading.read(store, [1], version="v2")
    with pytest.raises(StoreError, match="'v2' is not a complete"):
        arms.assign(open_store(config), "candidate", "v2")

    assert versions.publish(v2, "v2", open_store(config), progress=False)["rows"] == len(v2)
    store = open_repo(config.repo)
    np.testing.assert_array_equal(vectors(store, [2500], version="v2")[0], v2.embedding.iloc[-1])
    np.testing.assert_array_equal(vectors(store, [1, 1500, 2500]), before)


def test_a_published_version_is_never_overwritten(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    versions.publish(embeddings([1, 2], seed=1), "v1", open_store(config), progress=False)
    with pytest.raises(StoreError, match="'v1' is already published"):
        versions.publish(embeddings([1, 2], seed=2), "v1", open_store(config), progress=False)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (embeddings([1, 2], seed=1, dim=DIM + 1), "row 0, field 'embedding': vector has size 9, expected 8"),
        (embeddings([1, 2], seed=1).assign(embedding=[np.full(DIM, np.nan, np.float32)] * 2), "NaN"),
        (embeddings([1, 2, 1], seed=1), "row 2, field 'as_of': duplicate snapshot: user_id 1 as of 1000000"),
        (embeddings([1], seed=1).drop(columns="reccot"), "missing column 'reccot'"),
        (embeddings([1], seed=1).iloc[:0], "emb.parquet: no rows: a version must hold at least one user's vector"),
    ],
    ids=["wrong-size", "nan", "duplicate-user", "missing-column", "empty"],
)
def test_bad_vectors_are_refused_before_anything_is_written(tmp_path, table, message):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    with pytest.raises(DataError, match=message):
        versions.publish(table, "v1", open_store(config), source="emb.parquet", progress=False)
    assert not (tmp_path / "repo").exists()


def test_an_unreachable_redis_is_named_before_anything_is_written(tmp_path):
    from tests.conftest import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=f"{address},password=hunter2", dim=DIM)
    with pytest.raises(StoreError, match=f"online store redis at '{address}' is unreachable") as raised:
        versions.publish(embeddings([1], seed=1), "v1", open_store(config), progress=False)
    assert "hunter2" not in str(raised.value)
    assert not (tmp_path / "repo").exists()


def test_offline_rows_on_a_real_s3_server(tmp_path, s3, monkeypatch):
    s3.create_bucket(Bucket="features")
    endpoint = s3.meta.endpoint_url
    config = StoreConfig(repo=str(tmp_path / "repo"), offline="s3://features/reccot", s3_endpoint=endpoint, dim=DIM)
    table = embeddings(range(1, 11), seed=1)
    summary = versions.publish(table, "v1", open_store(config), progress=False)
    assert summary["offline"] == "s3://features/reccot/v1.parquet"
    offline = pd.concat(offline_files.read_batches(summary["offline"], endpoint))
    assert offline.user_id.tolist() == list(range(1, 11)) and set(offline.model_version) == {"v1"}
    np.testing.assert_array_equal(np.stack(offline.embedding), np.stack(table.embedding))
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # as in a pod: the endpoint only in the store's settings
    vectors = read_vectors(summary["offline"], DIM, endpoint=endpoint)  # what the replay reads
    assert vectors.users.tolist() == list(range(1, 11)) and vectors.as_of.tolist() == table.as_of.tolist()
    np.testing.assert_array_equal(vectors.matrix, np.stack(table.embedding))

    missing = StoreConfig(repo=str(tmp_path / "other"), offline="s3://no-such-bucket/x", s3_endpoint=endpoint, dim=DIM)
    with pytest.raises(StoreError, match="offline store s3://no-such-bucket at http://127.0.0.1:\\d+ is unreachable"):
        versions.publish(table, "v1", open_store(missing), progress=False)
    assert not (tmp_path / "other").exists()


def test_a_version_goes_through_memory_a_chunk_at_a_time_on_s3(tmp_path, s3, monkeypatch):
    """Read, checked, written offline and online 3 rows at a time (the carried rows too); a bad row is
    named by its row in the file; a failure while writing leaves no object and no version."""
    monkeypatch.setattr(offline_files, "BATCH", 3)
    s3.create_bucket(Bucket="features")
    endpoint = s3.meta.endpoint_url
    config = StoreConfig(repo=str(tmp_path / "repo"), offline="s3://features/reccot", s3_endpoint=endpoint, dim=DIM)
    store = open_store(config)
    first = embeddings(range(1, 11), seed=1)
    first.to_parquet(tmp_path / "first.parquet")
    summary = versions.publish(versions.parquet_chunks(tmp_path / "first.parquet"), "v1", store, progress=False)
    assert summary["rows"] == 10 and vectors(store.feast, [1, 10], version="v1").shape == (2, DIM)

    second = embeddings(range(9, 13), seed=2)
    second.to_parquet(tmp_path / "second.parquet")
    chunks = versions.parquet_chunks(tmp_path / "second.parquet")
    summary = versions.publish(chunks, "v2", store, carry_from="v1", progress=False)
    assert summary["rows"] == 14 and summary["carried"] == 10  # v1's snapshots of 9 and 10 are older: kept
    handle = s3fs_file(endpoint, summary["offline"])
    assert handle.metadata.num_row_groups == 2 + 4  # two new chunks; carried: 1-3, 4-6, 7-9, 10
    np.testing.assert_array_equal(vectors(store.feast, [10, 12], version="v2"), np.stack(second.embedding)[[1, 3]])
    np.testing.assert_array_equal(vectors(store.feast, [1], version="v2"), np.stack(first.embedding)[[0]])

    bad = embeddings(range(20, 30), seed=3)
    bad.at[7, "embedding"] = np.full(DIM, np.nan, np.float32)
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="row 7"):  # the third chunk's second row
        versions.publish(versions.parquet_chunks(tmp_path / "bad.parquet"), "v3", store, progress=False)

    reads = iter([embeddings(range(20, 30), seed=3), bad])  # checked good, then bad while writing
    with pytest.raises(DataError, match="row 7"):
        versions.publish(lambda: iter([next(reads)]), "v3", store, progress=False)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="features")["Contents"]]
    assert listed == ["reccot/v1.parquet", "reccot/v2.parquet"] and not versions.is_published(store, "v3")


def s3fs_file(endpoint: str, path: str):
    import pyarrow.parquet as pq
    import s3fs

    return pq.ParquetFile(s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).open(path, "rb"))


def test_registry_on_s3_is_shared_by_two_repo_folders(tmp_path, s3):
    """On a cluster each pod writes its own feature_store.yaml; the registry on S3 is what they share."""
    s3.create_bucket(Bucket="features")
    endpoint = s3.meta.endpoint_url
    shared = {"offline": "s3://features/rows", "registry": "s3://features/registry.db", "s3_endpoint": endpoint}
    publisher = StoreConfig(repo=str(tmp_path / "pod-a"), dim=DIM, **shared)
    versions.publish(embeddings(range(1, 6), seed=1), "v1", open_store(publisher), progress=False)
    arms.assign(open_store(publisher), "control", "v1")
    reader = StoreConfig(repo=str(tmp_path / "pod-b"), dim=DIM, **shared)
    assert versions.is_published(open_store(reader), "v1") and arms.arm_version(open_store(reader), "control")
    # pod-b's own SQLite file never got v1's rows: no arm moves to it there
    with pytest.raises(StoreError, match="'v1': the online store does not serve 5 of its 5 users as published"):
        arms.promote(open_store(reader), source_arm="control", target_arm="candidate")


def test_the_publish_stage_carries_inactive_users_when_only_active_ones_were_refreshed(tmp_path):
    from trackrec.features.config import FeaturesConfig
    from trackrec.stages.publish import publish, version_name

    config = FeaturesConfig(store=StoreConfig(repo=str(tmp_path / "repo"), dim=DIM))
    folders = {}
    for name, table in {"all": embeddings(range(1, 11), seed=1), "active": embeddings([2, 3], seed=2)}.items():
        folders[name] = tmp_path / name
        folders[name].mkdir()
        table.to_parquet(Embeddings(folders[name]).table)
    first = publish(folders["all"], config, tmp_path / "out1")
    content = {name: sha256_of(Embeddings(folder).table) for name, folder in folders.items()}
    assert first["rows"] == 10 and first["arm"]["version"] == version_name(content["all"], None)
    refreshed = publish(folders["active"], config, tmp_path / "out2", partial=True)
    assert refreshed["rows"] == 12 and refreshed["carried"] == 10  # every older snapshot stays
    assert refreshed["arm"] == {
        "arm": "control",
        "version": version_name(content["active"], first["version"]),  # named by content and base
        "model": None,
        "previous": first["version"],
        "changed": True,
    }
    store = open_repo(tmp_path / "repo")
    np.testing.assert_array_equal(vectors(store, [2, 3]), np.stack(embeddings([2, 3], seed=2).embedding))
    np.testing.assert_array_equal(vectors(store, [7])[0], embeddings(range(1, 11), seed=1).embedding.iloc[6])
    again = publish(folders["active"], config, tmp_path / "out3", partial=True)  # a re-run: nothing new
    assert again["already_published"] and again["version"] == refreshed["version"]
    assert (
        not again["arm"]["changed"]
        and arms.history(open_store(config.store), "control")[-1]["version"] == again["version"]
    )


def test_a_refresh_whose_arm_moved_while_it_ran_is_refused(tmp_path):
    """The refresh wrote its snapshots with the G of the version it fetched; if a retrain moved the
    arm meanwhile, carrying the new version's snapshots under the old G would mix two Gs."""
    from trackrec.features.config import FeaturesConfig
    from trackrec.stages.publish import publish

    config = FeaturesConfig(store=StoreConfig(repo=str(tmp_path / "repo"), dim=DIM))
    for name, table in {"all": embeddings(range(1, 11), seed=1), "active": embeddings([2, 3], seed=2)}.items():
        (tmp_path / name).mkdir()
        table.to_parquet(Embeddings(tmp_path / name).table)
    first = publish(tmp_path / "all", config, tmp_path / "out1")
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    CurrentGenerator(fetched).version.write_text("emb_000000000000")  # what the arm read when the refresh began
    with pytest.raises(StoreError, match=r"moved from emb_000000000000 to .* while this refresh ran"):
        publish(tmp_path / "active", config, tmp_path / "out2", partial=True, refreshed_from=fetched)
    assert arms.history(open_store(config.store), "control")[-1]["version"] == first["version"]
    CurrentGenerator(fetched).version.write_text(first["version"])
    assert publish(tmp_path / "active", config, tmp_path / "out2", partial=True, refreshed_from=fetched)["carried"]


def test_the_publish_stage_opens_the_store_once(tmp_path, monkeypatch):
    """An incremental publish with an arm and pruning: one reachability check, one Feast store (each
    opening pings Redis, checks S3 and rewrites the repo's feature_store.yaml)."""
    import feast

    from trackrec.features import store as store_module
    from trackrec.features.config import FeaturesConfig
    from trackrec.stages.publish import publish

    config = FeaturesConfig(store=StoreConfig(repo=str(tmp_path / "repo"), dim=DIM), keep_versions=3)
    for name, table in {"all": embeddings(range(1, 11), seed=1), "active": embeddings([2, 3], seed=2)}.items():
        (tmp_path / name).mkdir()
        table.to_parquet(Embeddings(tmp_path / name).table)
    publish(tmp_path / "all", config, tmp_path / "out1")
    opened = {"checks": 0, "stores": 0}
    check, build = store_module.check_reachable, feast.FeatureStore.__init__

    def counted_check(*args, **kwargs):
        opened["checks"] += 1
        return check(*args, **kwargs)

    def counted_build(self, *args, **kwargs):
        opened["stores"] += 1
        return build(self, *args, **kwargs)

    monkeypatch.setattr(store_module, "check_reachable", counted_check)
    monkeypatch.setattr(feast.FeatureStore, "__init__", counted_build)
    summary = publish(tmp_path / "active", config, tmp_path / "out2", partial=True)
    assert summary["carried"] == 10 and summary["arm"]["changed"] and summary["pruned"] == []
    assert opened == {"checks": 1, "stores": 1}
