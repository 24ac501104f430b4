import pandas as pd
import pytest

from trackrec.data.dataset import TABLE_FILES, Dataset
from trackrec.data.schema import validate_tables
from trackrec.errors import DataError


def tables(**overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two samples of user 1: the first with no history, the second seeing the first."""
    samples = pd.DataFrame(
        {
            "user_id": [1, 1],
            "target_item_id": [3, 4],
            "label": [1, 0],
            "timestamp": [1_000, 2_000],
            "split": ["train", "test"],
            "history_start": [0, 0],
            "history_end": [0, 1],
        }
    )
    history = pd.DataFrame({"item_id": [3], "label": [1], "rating": [float("nan")]})
    for column, values in overrides.items():
        (history if column.startswith("history.") else samples)[column.removeprefix("history.")] = values
    return samples, history


def test_valid_tables_pass_and_the_histories_read_back_as_lists():
    samples, history = tables()
    validate_tables(samples, history, 50, "f")
    items = pd.DataFrame({"item_id": [3, 4], "title": ["A (1990)", "B (1991)"], "genres": [[], []], "year": [0, 0]})
    dataset = Dataset.built(samples, history, items, {}, 50, "f")
    rows = dataset.with_histories(dataset.samples("test"))
    assert rows.iloc[0].history_titles == ["A (1990)"] and rows.iloc[0].target_title == "B (1991)"
    assert dataset.meta["rows"] == {"train": 1, "valid": 0, "test": 1}


def test_missing_column_is_named():
    samples, history = tables()
    with pytest.raises(DataError, match=r"f/samples.*field 'target_item_id'.*missing column"):
        validate_tables(samples.drop(columns="target_item_id"), history, 50, "f")


def test_label_outside_binary_names_row():
    with pytest.raises(DataError, match=r"f/samples, row 1, field 'label': must be 0 or 1, got 2"):
        validate_tables(*tables(label=[1, 2]), 50, "f")


@pytest.mark.parametrize(
    ("override", "where", "message"),
    [
        ({"history_end": [0, 2]}, r"f/samples, row 1, field 'history_end'", "must lie in 0..1"),
        ({"history_start": [0, 1], "history_end": [0, 0]}, r"row 1, field 'history_end'", "not before"),
        ({"split": ["train", "later"]}, r"row 1, field 'split'", "must be one of"),
        ({"history.item_id": [0]}, r"f/history, row 0, field 'item_id'", ">= 1"),
        ({"history.label": [5]}, r"f/history, row 0, field 'label'", "0 or 1"),
    ],
)
def test_malformed_tables_name_table_row_and_field(override, where, message):
    with pytest.raises(DataError, match=rf"{where}.*{message}"):
        validate_tables(*tables(**override), 50, "f")


def test_a_history_longer_than_the_maximum_is_refused():
    with pytest.raises(DataError, match=r"row 1, field 'history_end'.*spans more than 0 rows"):
        validate_tables(*tables(), 0, "f")


def test_bad_user_id_is_named():
    with pytest.raises(DataError, match=r"row 0, field 'user_id'.*integer id >= 1"):
        validate_tables(*tables(user_id=["x", 1]), 50, "f")


def test_a_table_changed_after_writing_is_refused_on_open(tmp_path):
    samples, history = tables()
    items = pd.DataFrame({"item_id": [3, 4], "title": ["A", "B"], "genres": [[], []], "year": [0, 0]})
    folder = Dataset.built(samples, history, items, {}, 50, "f").save(tmp_path / "d")
    Dataset.open(folder)
    samples.iloc[:1].to_parquet(folder / TABLE_FILES["samples"], index=False)
    with pytest.raises(DataError, match=r"samples.parquet: holds 1 rows, meta.json says 2"):
        Dataset.open(folder)
    samples.assign(label=[0, 0]).to_parquet(folder / TABLE_FILES["samples"], index=False)
    with pytest.raises(DataError, match=r"samples.parquet: content differs from the hash in meta.json"):
        Dataset.open(folder)


def _events(users: list[int]) -> pd.DataFrame:
    n = len(users)
    return pd.DataFrame(
        {"user_id": users, "item_id": range(1, n + 1), "label": [1] * n, "rating": [4.0] * n,
         "timestamp": range(n), "split": ["train"] * n}
    )  # fmt: skip


def test_histories_need_each_users_events_in_one_run_in_any_user_order():
    from trackrec.data.history import samples_from_events

    samples, _ = samples_from_events(_events([2, 2, 1, 1]), "full", 5)  # grouped, not ascending: fine
    assert samples["history_end"].tolist() == [0, 1, 2, 3] and samples["history_start"].tolist() == [0, 0, 2, 2]
    with pytest.raises(DataError, match="not grouped by user"):
        samples_from_events(_events([1, 2, 1]), "full", 5)
