"""The published store in time: Feast's point-in-time join gives each sample the vector the training
path read, the online store serves each user's newest snapshot, and an expired one is not served."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.features.test_publish import DIM, embeddings
from trackrec import cli
from trackrec.data.snapshots import DAY, SnapshotVectors
from trackrec.features import reading, versions
from trackrec.features.point_in_time import training_features
from trackrec.features.reading import open_repo
from trackrec.features.store import StoreConfig, StoreError, open_store


def snapshots() -> pd.DataFrame:
    """Users 1-4, each with snapshots on days 10, 20, 30 (user 4: only day 30)."""
    parts = [embeddings([1, 2, 3], seed=day, as_of=day * DAY) for day in (10, 20)]
    parts.append(embeddings([1, 2, 3, 4], seed=30, as_of=30 * DAY))
    return pd.concat(parts, ignore_index=True)


def test_feasts_point_in_time_join_returns_the_vector_the_training_path_read(tmp_path):
    table = snapshots()
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM, ttl_days=15)
    versions.publish(table, "v1", open_store(config), progress=False)
    rng = np.random.default_rng(0)
    users = rng.integers(1, 6, 200)  # user 5 has no snapshot
    times = rng.integers(5 * DAY, 50 * DAY, 200)
    times[:12] = np.repeat(np.array([10, 20, 30]) * DAY, 4)  # at a snapshot's own time: the one before
    samples = pd.DataFrame({"user_id": users, "timestamp": times})

    joined = training_features(open_store(config), "v1", samples)
    vectors = SnapshotVectors(table.user_id.to_numpy(), table.as_of.to_numpy(), np.stack(table.embedding), 15 * DAY)
    rows = vectors.rows_for(users, times)
    for row, got in zip(rows, joined.itertuples(), strict=True):
        if row < 0:
            assert got.embedding is None and pd.isna(got.as_of)
        else:
            np.testing.assert_array_equal(got.embedding, vectors.matrix[row])
            assert got.as_of == table.as_of.iloc[row] < got.timestamp
    assert (rows >= 0).sum() > 50 and (rows < 0).sum() > 20  # both cases are there
    assert ((times > 45 * DAY) & (rows < 0) & (users < 5)).any()  # past the TTL: not joined


def test_online_serves_each_users_newest_snapshot_with_its_as_of_and_not_an_expired_one(tmp_path, monkeypatch):
    table = snapshots()
    now = int(pd.Timestamp.now(tz="UTC").timestamp())
    table.loc[table.user_id == 4, "as_of"] = now - DAY  # a fresh one
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM, ttl_days=7)
    versions.publish(table, "v1", open_store(config), progress=False)
    read = reading.read(open_repo(config.repo), [1, 4], version="v1")
    assert read.as_of.iloc[1] == now - DAY
    np.testing.assert_array_equal(read.embedding.iloc[1], table.embedding.iloc[-1])
    assert read.embedding.iloc[0] is None  # user 1's newest is from day 30 of 1970: older than the TTL

    forever = StoreConfig(repo=str(tmp_path / "repo2"), dim=DIM)
    versions.publish(table, "v1", open_store(forever), progress=False)
    read = reading.read(open_repo(forever.repo), [1], version="v1")
    assert read.as_of.iloc[0] == 30 * DAY  # the newest of its three
    np.testing.assert_array_equal(read.embedding.iloc[0], table[table.user_id == 1].embedding.iloc[-1])

    monkeypatch.setattr(cli.console, "width", 250)  # the table unwrapped
    shown = CliRunner().invoke(cli.app, ["features", "get", "--user", "1", "--user", "4", "--repo", config.repo,
                                         "--version", "v1"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    when = pd.Timestamp(now - DAY, unit="s", tz="UTC").isoformat()
    assert when in shown.output and "past the TTL" in shown.output  # user 4's as_of; user 1's expired


def test_carrying_from_a_version_without_times_is_refused_by_name(tmp_path):
    """A version an older trackrec published has no as_of: a refresh says so before writing."""
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    versions.publish(embeddings([1, 2], seed=1), "v1", open_store(config), progress=False)
    path = open_store(config).feast.get_feature_view("reccot_v1").batch_source.path
    pd.read_parquet(path).drop(columns="as_of").to_parquet(path)
    with pytest.raises(StoreError, match="v1.parquet: no as_of column .*run the retrain once"):
        versions.publish(embeddings([1], seed=2), "v2", open_store(config), carry_from="v1", progress=False)
    assert not versions.is_published(open_store(config), "v2")
