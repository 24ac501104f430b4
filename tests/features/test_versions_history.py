"""An arm's history on a real Feast store: every change logged, rollback any number of steps or
to a named version, a no-op re-assign, the drop guard, a killed attempt removed before a re-run,
online rows restored after Redis lost them, old versions pruned but never one an arm may need."""

from __future__ import annotations

import numpy as np
import pytest

from tests.features.test_publish import DIM, embeddings, vectors
from trackrec.features import arms, reading, versions
from trackrec.features.reading import open_repo
from trackrec.features.store import StoreConfig, StoreError, open_store
from trackrec.stages.outputs import Embeddings


def published(config: StoreConfig, *names: str) -> None:
    for seed, name in enumerate(names, start=1):
        versions.publish(
            embeddings(range(1, 6), seed=seed), name, open_store(config), progress=False, data_version=f"d{seed}"
        )


def test_rollback_walks_back_through_the_arms_history_and_to_a_named_version(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    published(config, "v1", "v2", "v3")
    for name in ("v1", "v2", "v3"):
        arms.assign(open_store(config), "control", name)
    assert arms.assign(open_store(config), "control", "v3")["changed"] is False  # what it reads: nothing changes
    assert arms.rollback(open_store(config))["version"] == "v2"
    assert arms.rollback(open_store(config))["version"] == "v1"  # two levels: not back to v3
    with pytest.raises(StoreError, match="no earlier version"):
        arms.rollback(open_store(config))
    for name in ("v2", "v3"):
        arms.assign(open_store(config), "control", name)
    assert arms.rollback(open_store(config), to="v1")["version"] == "v1"
    with pytest.raises(StoreError, match="never read version 'v3' before"):
        arms.rollback(open_store(config), to="v3")
    log = arms.history(open_store(config), "control")
    assert [(e["version"], e["action"]) for e in log] == [
        ("v1", "assign"), ("v2", "assign"), ("v3", "assign"), ("v2", "rollback"), ("v1", "rollback"),
        ("v2", "assign"), ("v3", "assign"), ("v1", "rollback"),
    ]  # fmt: skip
    assert log[0]["data_version"] == "d1" and log[2]["data_version"] == "d3" and log[0]["at"] and log[0]["by"]
    store = open_repo(config.repo)
    np.testing.assert_array_equal(vectors(store, [1]), vectors(store, [1], version="v1"))


def test_a_version_dropping_too_many_of_the_arms_users_is_refused_unless_forced(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    versions.publish(embeddings(range(1, 11), seed=1), "v1", open_store(config), progress=False)
    arms.assign(open_store(config), "control", "v1")
    guard = arms.Guard("control", max_drop=0.1)
    with pytest.raises(StoreError, match="would drop 8 of the 10 users arm 'control' reads"):
        versions.publish(embeddings([1, 2], seed=2), "v2", open_store(config), progress=False, guard=guard)
    assert not versions.is_published(open_store(config), "v2")
    forced = arms.Guard("control", max_drop=0.1, force=True)
    assert (
        versions.publish(embeddings([1, 2], seed=2), "v2", open_store(config), progress=False, guard=forced)["rows"]
        == 2
    )


def test_an_incremental_publish_without_a_complete_base_is_refused(tmp_path):
    from trackrec.features.config import FeaturesConfig
    from trackrec.stages.publish import publish

    (tmp_path / "active").mkdir()
    embeddings([2, 3], seed=2).to_parquet(Embeddings(tmp_path / "active").table)
    config = FeaturesConfig(store=StoreConfig(repo=str(tmp_path / "repo"), dim=DIM))
    with pytest.raises(StoreError, match="needs a complete version to carry the others from"):
        publish(tmp_path / "active", config, tmp_path / "out", partial=True)
    assert not (tmp_path / "out").exists()


def test_rerunning_a_killed_version_removes_the_killed_attempts_rows_first(tmp_path, monkeypatch):
    from trackrec.features import definitions

    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)

    def killed(*args):
        raise KeyboardInterrupt  # the pod dies after the online rows, before the completion mark

    with monkeypatch.context() as patch:
        patch.setattr(definitions, "version_service", killed)
        with pytest.raises(KeyboardInterrupt):
            versions.publish(embeddings([1, 2, 3], seed=1), "v2", open_store(config), progress=False)
    view = open_repo(config.repo).get_feature_view(definitions.view_name("v2"))  # half written: rows, no mark
    assert not versions.is_published(open_store(config), "v2")
    online = open_repo(config.repo).get_online_features(
        features=[f"{view.name}:model_version"], entity_rows=[{"user_id": 1}]
    )
    assert online.to_dict()["model_version"] == ["v2"]
    versions.publish(embeddings([4, 5], seed=2), "v2", open_store(config), progress=False)
    read = reading.read(open_repo(config.repo), [1, 4], version="v2")
    assert read.model_version.tolist() == [None, "v2"]  # user 1 was only in the killed attempt


def test_after_redis_loses_its_rows_restore_brings_back_the_arms_reads_bit_identical(tmp_path, redis_server):
    from trackrec.features.config import FeaturesConfig
    from trackrec.stages.publish import publish

    config = StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=redis_server.url, dim=DIM)
    (tmp_path / "emb").mkdir()
    embeddings(range(1, 41), seed=1).to_parquet(Embeddings(tmp_path / "emb").table)
    first = publish(tmp_path / "emb", FeaturesConfig(store=config), tmp_path / "out1")
    users = list(range(1, 41))
    before = reading.read(open_repo(config.repo), users)
    redis_server.kill()
    redis_server.start()  # an empty Redis: the registry still says complete
    assert reading.read(open_repo(config.repo), users).model_version.isna().all()
    assert versions.online_missing(open_store(config), first["version"])
    assert versions.restore(open_store(config), first["version"], progress=False)["users"] == 40
    after = reading.read(open_repo(config.repo), users)
    assert after.drop(columns="embedding").equals(before.drop(columns="embedding"))
    assert all(
        np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(after.embedding, before.embedding, strict=True)
    )
    redis_server.kill()
    redis_server.start()
    again = publish(tmp_path / "emb", FeaturesConfig(store=config), tmp_path / "out2")  # publish checks Redis too
    assert again["already_published"] and again["restored"]["users"] == 40
    assert not reading.read(open_repo(config.repo), users).model_version.isna().any()


def test_an_arm_rolls_back_through_its_last_versions_only_so_older_ones_can_be_pruned(tmp_path):
    from trackrec.features.definitions import ROLLBACK_DEPTH

    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    names = [f"v{i}" for i in range(ROLLBACK_DEPTH + 2)]
    published(config, *names)
    for name in names:
        arms.assign(open_store(config), "control", name)
    assert sorted(versions.prune(open_store(config), keep=1)) == names[:2]  # beyond the rollback depth
    for _ in range(ROLLBACK_DEPTH - 1):
        arms.rollback(open_store(config))
    with pytest.raises(StoreError, match="no earlier version"):
        arms.rollback(open_store(config))
    assert len(arms.history(open_store(config), "control")) == len(names) + ROLLBACK_DEPTH - 1  # the log keeps all


def test_prune_keeps_the_newest_and_every_version_an_arm_may_need(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    published(config, "v1", "v2", "v3", "v4", "v5")
    arms.assign(open_store(config), "control", "v1")
    arms.assign(open_store(config), "control", "v2")  # v1 stays reachable by rollback
    arms.assign(open_store(config), "candidate", "v3")
    assert sorted(versions.prune(open_store(config), keep=1)) == ["v4"]  # v5 newest; v1-v3 read or reachable
    assert not versions.is_published(open_store(config), "v4")
    assert reading.read(open_repo(config.repo), [1], version="v5").model_version.tolist() == ["v5"]
    assert arms.rollback(open_store(config))["version"] == "v1"


def test_the_publish_stage_prunes_to_the_configured_number_of_versions(tmp_path):
    from trackrec.features.config import FeaturesConfig
    from trackrec.stages.publish import publish

    config = FeaturesConfig(store=StoreConfig(repo=str(tmp_path / "repo"), dim=DIM), keep_versions=1, max_drop=1.0)
    published(config.store, "old1", "old2")
    (tmp_path / "emb").mkdir()
    embeddings(range(1, 6), seed=9).to_parquet(Embeddings(tmp_path / "emb").table)
    summary = publish(tmp_path / "emb", config, tmp_path / "out")
    assert sorted(summary["pruned"]) == ["old1", "old2"]  # the new version is read by control: kept
    assert versions.is_published(open_store(config.store), summary["version"])
