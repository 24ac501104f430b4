import pandas as pd
import pytest

from tests.synthetic import split_rows
from trackrec.data.config import DataConfig
from trackrec.data.sources import build_dataset
from trackrec.errors import ConfigError, DataError


@pytest.fixture
def log_path(tmp_path):
    log = pd.DataFrame(
        {
            "user_id": ["ann", "bob", "ann", "ann", "bob", "ann"],
            "item_id": ["sku9", "sku9", "sku7", "sku5", "sku7", "sku9"],
            "timestamp": pd.to_datetime(
                ["2025-01-01", "2025-01-02", "2025-01-03", "2025-02-02", "2025-03-05", "2025-03-06"], utc=True
            ),
            "label": [1, 0, 0, 1, 1, 0],
            "title": ["Nine", "Nine", "Seven", "Five", "Seven", "Nine"],
            "genres": [["a"], ["a"], ["b"], ["a", "c"], ["b"], ["a"]],
        }
    )
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    return path


def config(path, **overrides):
    return DataConfig(
        **{
            "source": "behaviour-log",
            "path": str(path),
            "valid_start": "2025-02-01",
            "test_start": "2025-03-01",
            **overrides,
        }
    )


def test_time_split_dense_ids_and_histories(log_path):
    dataset = build_dataset(config(log_path))
    train, valid, test = (split_rows(dataset, s) for s in ("train", "valid", "test"))
    assert len(train) == 3 and len(valid) == 1 and len(test) == 2
    assert list(test["user_id"]) == [1, 2]  # ann -> 1, bob -> 2 (first appearance)
    ann_test = test.iloc[0]
    assert list(ann_test["history_titles"]) == ["Nine", "Seven", "Five"]
    assert list(ann_test["history_labels"]) == [1, 0, 1]
    assert dict(zip(dataset.items["title"], dataset.items["genres"].map(list), strict=True))["Five"] == ["a", "c"]


def test_missing_column_named(log_path):
    pd.read_parquet(log_path).drop(columns="label").to_parquet(log_path)
    with pytest.raises(DataError, match=r"log\.parquet, field 'label': missing column"):
        build_dataset(config(log_path))


def test_split_dates_required():
    with pytest.raises(ConfigError, match="valid_start: required when source is behaviour-log"):
        DataConfig(source="behaviour-log", path="x.parquet", test_start="2025-03-01")


def test_empty_split_is_explained(log_path):
    with pytest.raises(DataError, match=r"no events fall in the \['test'\] split"):
        build_dataset(config(log_path, test_start="2030-01-01"))


def written(tmp_path, log: pd.DataFrame, name="log.parquet"):
    path = tmp_path / name
    log.to_parquet(path)
    return path


def test_parquet_timestamps_of_any_unit_and_zone_read_as_the_same_seconds(log_path, tmp_path):
    log = pd.read_parquet(log_path)
    reference = split_rows(build_dataset(config(log_path)), "test")
    for unit in ("ms", "us", "s"):  # Spark, BigQuery and pyarrow write these
        other = log.assign(timestamp=log.timestamp.dt.tz_localize(None).astype(f"datetime64[{unit}]"))
        same = split_rows(build_dataset(config(written(tmp_path, other, f"{unit}.parquet"))), "test")
        pd.testing.assert_frame_equal(same, reference)
    paris = log.assign(timestamp=log.timestamp.dt.tz_convert("Europe/Paris"))  # the same instants
    pd.testing.assert_frame_equal(
        split_rows(build_dataset(config(written(tmp_path, paris, "tz.parquet"))), "test"), reference
    )
    seconds = log.assign(timestamp=log.timestamp.astype("int64") // 10**9)
    pd.testing.assert_frame_equal(
        split_rows(build_dataset(config(written(tmp_path, seconds, "s.parquet"))), "test"), reference
    )


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda log: log.assign(timestamp=log.timestamp.where(log.index != 3)),
            r"row 3, field 'timestamp': missing timestamp \(NaT\)",
        ),
        (
            lambda log: log.assign(timestamp=log.timestamp.astype("int64") // 10**6),
            r"row 0, field 'timestamp': .*milliseconds",
        ),
        (lambda log: log.assign(rating=["4", "x", "3", "5", "1", "2"]), r"row 1, field 'rating': not a number: 'x'"),
    ],
    ids=["NaT", "milliseconds as seconds", "non-numeric rating"],
)
def test_bad_values_are_named_with_row_and_field(log_path, tmp_path, change, said):
    with pytest.raises(DataError, match=said):
        build_dataset(config(written(tmp_path, change(pd.read_parquet(log_path)))))


def test_a_csv_named_parquet_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "log.parquet"
    path.write_text("user_id,item_id,timestamp,label\n1,2,3,1\n")
    with pytest.raises(DataError, match=r"log\.parquet: not a readable parquet file"):
        build_dataset(config(path))


def test_repeated_events_are_dropped_and_counted_so_a_target_is_never_its_own_history(log_path, tmp_path):
    log = pd.read_parquet(log_path)
    doubled = pd.concat([log, log.iloc[[5]]], ignore_index=True)  # ann's test event exported twice
    dataset = build_dataset(config(written(tmp_path, doubled)))
    assert dataset.meta["dropped_duplicates"] == 1
    (ann,) = [row for row in split_rows(dataset, "test").itertuples() if row.user_id == 1]  # one sample, not two
    assert list(ann.history_titles) == ["Nine", "Seven", "Five"]  # not "Nine" again from the copy


def test_missing_titles_fall_back_to_the_item_id_and_long_ones_are_capped(log_path, tmp_path):
    from trackrec.data.behaviour_log import TITLE_MAX

    log = pd.read_parquet(log_path)
    log["title"] = [None, "Nine", "Seven", "x" * 5000, "Seven", None]
    items = build_dataset(config(written(tmp_path, log))).items
    assert "sku9" in set(items.title) and "None" not in set(items.title)
    assert items.title.str.len().max() == TITLE_MAX


def test_dense_ids_survive_a_reordered_export_and_a_grown_log_with_the_id_map(log_path, tmp_path):
    log = pd.read_parquet(log_path)
    first = build_dataset(config(log_path, id_map=str(tmp_path / "ids")))
    shuffled = log.sample(frac=1, random_state=3).reset_index(drop=True)
    again = build_dataset(config(written(tmp_path, shuffled, "shuffled.parquet")))
    for split in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(
            split_rows(again, split), split_rows(first, split)
        )  # no map needed for a re-export
    from trackrec.stages.prepare_data import prepare_data

    prepare_data(config(log_path, id_map=str(tmp_path / "ids")), tmp_path / "run1")
    newcomer = pd.DataFrame(  # a user who comes first in time, and in the file
        {"user_id": ["cat"], "item_id": ["sku1"], "timestamp": pd.to_datetime(["2024-12-01"], utc=True),
         "label": [1], "title": ["One"], "genres": [["a"]]}
    )  # fmt: skip
    grown = pd.concat([newcomer, shuffled], ignore_index=True)
    run2 = prepare_data(
        config(written(tmp_path, grown, "grown.parquet"), id_map=str(tmp_path / "ids")), tmp_path / "run2"
    )
    users = run2.id_maps["user"].set_index("raw_id")["id"]
    assert (users["ann"], users["bob"], users["cat"]) == (1, 2, 3)  # known ids kept, the newcomer appended
    items = first.id_maps["item"].set_index("raw_id")["id"]
    assert (run2.id_maps["item"].set_index("raw_id")["id"].loc[items.index] == items).all()


def write_parts(log: pd.DataFrame, folder, parts: int = 3):
    """The log as a folder of parquet parts, rows shuffled across them, with Spark's `_SUCCESS`."""
    folder.mkdir()
    shuffled = log.sample(frac=1, random_state=0).reset_index(drop=True)
    for index in range(parts):
        shuffled.iloc[index::parts].to_parquet(folder / f"part-{index:05d}.parquet", index=False)
    (folder / "_SUCCESS").touch()
    return folder


def test_a_folder_of_parts_prepares_the_same_dataset_as_the_single_file(log_path, tmp_path):
    whole = build_dataset(config(log_path))
    parted = build_dataset(config(write_parts(pd.read_parquet(log_path), tmp_path / "parts")))
    for name in ("samples", "history"):
        pd.testing.assert_frame_equal(parted.tables[name], whole.tables[name])
    pd.testing.assert_frame_equal(parted.items, whole.items)


def test_only_the_log_columns_we_use_are_read(log_path, tmp_path):
    """Column projection: a wide log's other columns (here one that no parquet reader could even
    turn into pandas without the extension type) never leave the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(log_path).append_column("payload", pa.array([b"x" * 10] * 6, pa.binary()))
    pq.write_table(table, tmp_path / "wide.parquet")
    dataset = build_dataset(config(tmp_path / "wide.parquet"))
    pd.testing.assert_frame_equal(dataset.tables["samples"], build_dataset(config(log_path)).tables["samples"])


def test_a_csv_log_prepares_the_same_dataset_as_its_parquet(log_path, tmp_path):
    """The CSV source (a file of the same columns, timestamps as Unix seconds; no list column)."""
    log = pd.read_parquet(log_path).drop(columns="genres")
    log["timestamp"] = log.timestamp.astype("int64") // 10**9
    log.to_csv(tmp_path / "log.csv", index=False)
    log.to_parquet(tmp_path / "log.parquet")
    from_csv = build_dataset(config(tmp_path / "log.csv", source="behaviour-log-csv"))
    from_parquet = build_dataset(config(tmp_path / "log.parquet"))
    for name in ("samples", "history"):
        pd.testing.assert_frame_equal(from_csv.tables[name], from_parquet.tables[name])
    pd.testing.assert_frame_equal(from_csv.items, from_parquet.items)
    with pytest.raises(DataError, match="missing column 'label'"):
        log.drop(columns="label").to_csv(tmp_path / "bad.csv", index=False)
        build_dataset(config(tmp_path / "bad.csv", source="behaviour-log-csv"))
