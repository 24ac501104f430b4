"""prepare_data fanned out over user shards (plan, one task per shard, join) writes the dataset one
pass writes, each shard reading only its users' events; the pipeline runs it with ParallelFor."""

import json

import numpy as np
import pandas as pd
import pytest
from kfp import local

from pipelines.settings import PipelineSettings
from pipelines.trackrec_pipeline import build_pipeline
from tests.test_behaviour_log import write_parts
from trackrec.config import config_to_dict
from trackrec.data import sources
from trackrec.data.behaviour_log import scan_ids
from trackrec.data.config import DataConfig
from trackrec.data.dataset import ID_MAP_FILES, Dataset
from trackrec.data.log_shards import ShardPlan
from trackrec.errors import DataError
from trackrec.stages.prepare_data import data_version, join_prepared, plan_prepare, prepare_data, prepare_shard

START = pd.Timestamp("2025-01-01", tz="UTC")


def event_log(n_users: int = 30, n_events: int = 900, seed: int = 0, string_ids: bool = True) -> pd.DataFrame:
    """Users of uneven activity, repeated exports of a few events, some titles missing."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0, 1, n_users)
    users = rng.choice(n_users, n_events, p=activity / activity.sum()) + 1
    items = rng.integers(1, 60, n_events)
    log = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users] if string_ids else users * 7,
            "item_id": [f"sku{i}" for i in items] if string_ids else items,
            "timestamp": START + pd.to_timedelta(rng.integers(0, 90 * 86400, n_events), unit="s"),
            "label": rng.integers(0, 2, n_events),
            "title": [None if i % 9 == 0 else f"Item {i}" for i in items],
            "genres": [["a", "b"][: 1 + i % 2] for i in items],
        }
    )
    return pd.concat([log, log.iloc[:15]], ignore_index=True)  # exported twice: dropped, counted


def config(path, **overrides) -> DataConfig:
    split = {"valid_start": "2025-03-01", "test_start": "2025-03-16"}
    return DataConfig(source="behaviour-log", path=str(path), **{**split, **overrides})


def in_shards(data: DataConfig, folder, shards: int, version: str = "v") -> Dataset:
    indices = plan_prepare(data, folder / "plan", shards)
    for index in indices:
        prepare_shard(folder / "plan", data, folder / f"part-{index}", index)
    # the parts handed over in reverse: the join orders them by their users
    return join_prepared(
        folder / "plan", [folder / f"part-{i}" for i in reversed(indices)], data, folder / "joined", version
    )


def assert_same_dataset(joined: Dataset, whole: Dataset, unlike: tuple[str, ...] = ()) -> None:
    """Equal tables, id maps and meta (but for the tables' hashes: row groups differ, and `unlike`)."""
    pd.testing.assert_frame_equal(joined.samples(), whole.samples())
    pd.testing.assert_frame_equal(joined.history_rows(0, 10**9), whole.history_rows(0, 10**9))
    pd.testing.assert_frame_equal(joined.items, whole.items)
    assert joined.id_maps.keys() == whole.id_maps.keys()
    for kind in whole.id_maps:
        pd.testing.assert_frame_equal(joined.id_maps[kind], whole.id_maps[kind])
    ignored = ("tables", *unlike)
    assert {k: v for k, v in joined.meta.items() if k not in ignored} == {
        k: v for k, v in whole.meta.items() if k not in ignored
    }


@pytest.mark.parametrize("string_ids", [True, False], ids=["string-ids-in-parts", "integer-ids-in-one-file"])
def test_a_log_prepared_in_shards_is_the_dataset_one_pass_writes(tmp_path, string_ids):
    log = event_log(string_ids=string_ids)
    if string_ids:
        path = write_parts(log, tmp_path / "log")
    else:
        path = tmp_path / "log.parquet"
        log.to_parquet(path)
    whole = prepare_data(config(path), tmp_path / "whole", "v")
    joined = in_shards(config(path), tmp_path, 3)
    assert_same_dataset(joined, Dataset.open(tmp_path / "whole"))
    assert whole.meta["dropped_duplicates"] == joined.meta["dropped_duplicates"] == 15
    plan = ShardPlan.load(tmp_path / "plan")
    assert len(plan.ranges) == 3 and max(plan.events) < 0.6 * sum(plan.events)  # no shard holds most events


def test_a_grown_log_keeps_the_id_maps_of_earlier_runs_in_shards_too(tmp_path):
    log = event_log()
    early = log[log.timestamp < START + pd.Timedelta(days=80)]
    early.to_parquet(tmp_path / "early.parquet")
    prepare_data(config(tmp_path / "early.parquet", id_map=str(tmp_path / "ids-whole")), tmp_path / "run1", "v")
    in_shards(config(tmp_path / "early.parquet", id_map=str(tmp_path / "ids-shards")), tmp_path / "run1-shards", 2)
    newcomer = log.iloc[:1].assign(user_id="zz-new", timestamp=START - pd.Timedelta(days=1))  # first in time
    grown = pd.concat([newcomer, log], ignore_index=True)
    grown.to_parquet(tmp_path / "grown.parquet")
    whole = prepare_data(config(tmp_path / "grown.parquet", id_map=str(tmp_path / "ids-whole")), tmp_path / "w", "v")
    grown_shards = config(tmp_path / "grown.parquet", id_map=str(tmp_path / "ids-shards"))
    joined = in_shards(grown_shards, tmp_path / "run2-shards", 4)
    assert_same_dataset(joined, Dataset.open(tmp_path / "w"), unlike=("config",))  # another id_map folder
    users = joined.id_maps["user"].set_index("raw_id")["id"]
    assert users["zz-new"] == users.max()  # appended, though it comes first in time: known ids kept
    kept = pd.read_parquet(tmp_path / "ids-shards" / ID_MAP_FILES["user"])
    pd.testing.assert_frame_equal(kept.astype({"raw_id": str}), whole.id_maps["user"])  # written back for run 3


def test_each_shard_reads_only_its_users_events(tmp_path, monkeypatch):
    path = tmp_path / "log.parquet"
    event_log().to_parquet(path)
    reads = []

    def recorded(log_path, users=None):
        read = reader(log_path, users)
        reads.append((users, read))
        return read

    reader = sources.read_behaviour_log
    monkeypatch.setattr(sources, "read_behaviour_log", recorded)
    in_shards(config(path), tmp_path, 3)
    assert len(reads) == 3
    every = pd.concat([read for _, read in reads])
    assert len(every) == len(pd.read_parquet(path))  # together the shards read each event once
    for users, read in reads:
        assert users is not None and set(read["user_id"].astype(str)) == set(users)
        assert len(read) < 0.6 * len(every)


def test_a_log_that_changed_after_its_plan_is_refused_by_the_shard(tmp_path):
    path = write_parts(event_log(), tmp_path / "log")
    plan_prepare(config(path), tmp_path / "plan", 2)
    pd.read_parquet(path).iloc[:3].assign(timestamp=START + pd.Timedelta(days=89)).to_parquet(
        path / "part-late.parquet"
    )
    with pytest.raises(DataError, match="changed after it was planned"):
        for index in (0, 1):
            prepare_shard(tmp_path / "plan", config(path), tmp_path / f"part-{index}", index)


@pytest.mark.parametrize("where", ["file", "s3"])
def test_a_log_rewritten_between_shards_with_as_many_events_is_refused(tmp_path, where, request):
    """Every user keeps its events and every shard its count: only the log's identity, recorded in
    the plan and checked again by each shard after its read, tells the two logs apart."""
    log = event_log()
    path, rewrite = tmp_path / "log.parquet", lambda table: table.to_parquet(tmp_path / "log.parquet")
    if where == "s3":
        s3 = request.getfixturevalue("s3")
        s3.create_bucket(Bucket="logs")
        path = "s3://logs/log.parquet"

        def rewrite(table):
            table.to_parquet(tmp_path / "local.parquet")
            s3.upload_file(str(tmp_path / "local.parquet"), "logs", "log.parquet")

    rewrite(log)
    assert plan_prepare(config(path), tmp_path / "plan", 2) == [0, 1]
    prepare_shard(tmp_path / "plan", config(path), tmp_path / "part-0", 0)
    rewrite(log.assign(label=1 - log.label))  # the same users, items and times: every count equal
    with pytest.raises(DataError, match=r"log\.parquet: the log changed after it was planned \(identity \w+ then"):
        prepare_shard(tmp_path / "plan", config(path), tmp_path / "part-1", 1)
    assert not (tmp_path / "part-1").exists()


def test_a_log_rewritten_after_the_pipeline_took_its_data_version_is_refused_by_every_shard(tmp_path):
    """The plan checks the log against the version KFP's cache keys on, not one it takes later: a log
    rewritten between the two would otherwise be joined and cached under the older version."""
    path = tmp_path / "log.parquet"
    log = event_log()
    log.to_parquet(path)
    keyed = data_version(config(path))
    log.assign(label=1 - log.label).to_parquet(path)
    assert plan_prepare(config(path), tmp_path / "plan", 2, keyed) == [0, 1]
    for index in (0, 1):
        with pytest.raises(DataError, match=f"the log changed after it was planned \\(identity {keyed} then"):
            prepare_shard(tmp_path / "plan", config(path), tmp_path / f"part-{index}", index)


def test_more_shards_than_users_plans_one_shard_per_user(tmp_path):
    path = tmp_path / "log.parquet"
    event_log(n_users=2, n_events=40).to_parquet(path)
    assert plan_prepare(config(path), tmp_path / "plan", 5) == [0, 1]
    prepare_data(config(path), tmp_path / "whole", "v")
    assert_same_dataset(in_shards(config(path), tmp_path, 5), Dataset.open(tmp_path / "whole"))


def test_a_source_that_is_not_a_parquet_log_is_one_shard_prepared_whole(collm_root, tmp_path):
    data = DataConfig(root=str(collm_root))
    assert plan_prepare(data, tmp_path / "plan", 4) == [0]
    prepare_data(data, tmp_path / "whole", "v")
    assert_same_dataset(in_shards(data, tmp_path, 4), Dataset.open(tmp_path / "whole"))


def test_a_bad_row_is_named_by_its_row_in_the_log_not_in_its_batch(tmp_path):
    log = event_log()
    log.loc[7, "user_id"] = None
    log.to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataError, match=r"log\.parquet, row 7, field 'user_id': missing id"):
        list(scan_ids(tmp_path / "log.parquet", batch_rows=3))


def test_a_missing_column_stops_the_plan_before_any_shard_starts(tmp_path):
    event_log().drop(columns="label").to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataError, match=r"log\.parquet, field 'label': missing column 'label'"):
        plan_prepare(config(tmp_path / "log.parquet"), tmp_path / "plan", 2)
    assert not (tmp_path / "plan").exists()


def test_the_split_check_runs_on_the_joined_shards(tmp_path):
    path = tmp_path / "log.parquet"
    event_log().to_parquet(path)
    late = config(path, valid_start="2026-01-01", test_start="2026-02-01")
    with pytest.raises(DataError, match=r"no events fall in the \['valid', 'test'\] split"):
        in_shards(late, tmp_path, 2)
    assert not (tmp_path / "joined").exists()


def test_the_pipeline_fans_prepare_data_out_when_the_settings_ask(tmp_path):
    """kfp.local runs plan, a task per shard (ParallelFor) and the join; the CTR model reads the join."""
    path = write_parts(event_log(), tmp_path / "log")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    settings = PipelineSettings(pipeline_root=str(tmp_path / "root"), reach=None, retries=0, prepare_shards=3)
    run_config = {"data": config_to_dict(config(path)), "ctr": {"train": {"max_epochs": 1}}}
    result = build_pipeline(None, False, settings)(config=json.dumps(run_config), shards=1)
    prepare_data(config(path), tmp_path / "whole", Dataset.open(result.outputs["dataset"].path).meta["data_version"])
    assert_same_dataset(Dataset.open(result.outputs["dataset"].path), Dataset.open(tmp_path / "whole"))
    parts = sorted((tmp_path / "root").glob("*/for-loop-*/prepare-shard/part"))  # a task per shard
    assert len(parts) == 3, parts


def test_an_s3_prefix_of_parts_prepared_in_shards_is_the_local_file_in_one_pass(s3, tmp_path):
    from trackrec.artifacts.s3 import client, upload_dir

    log = event_log()
    log.to_parquet(tmp_path / "log.parquet")
    s3.create_bucket(Bucket="logs")
    upload_dir(client(), write_parts(log, tmp_path / "parts"), "s3://logs/events/")
    joined = in_shards(config("s3://logs/events/", id_map="s3://logs/ids/"), tmp_path, 3)
    prepare_data(config(tmp_path / "log.parquet"), tmp_path / "whole", joined.meta["data_version"])
    assert_same_dataset(joined, Dataset.open(tmp_path / "whole"), unlike=("config",))
    kept = {o["Key"] for o in s3.list_objects_v2(Bucket="logs", Prefix="ids/")["Contents"]}
    assert kept == {"ids/user_ids.parquet", "ids/item_ids.parquet"}  # for the next run to extend


def test_parts_whose_users_overlap_are_not_joined(tmp_path):
    path = tmp_path / "log.parquet"
    event_log().to_parquet(path)
    plan_prepare(config(path), tmp_path / "plan", 2)
    prepare_shard(tmp_path / "plan", config(path), tmp_path / "part-0", 0)
    with pytest.raises(DataError, match="its users overlap those of"):
        join_prepared(tmp_path / "plan", [tmp_path / "part-0"] * 2, config(path), tmp_path / "joined", "v")
    assert not (tmp_path / "joined").exists()
