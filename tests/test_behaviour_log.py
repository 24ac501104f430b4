import pandas as pd
import pytest

from trackrec.data.dataset import DataConfig, build_dataset
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
    train, valid, test = (dataset.samples[s] for s in ("train", "valid", "test"))
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
