import pandas as pd
import pytest

from trackrec.data.schema import SAMPLE_COLUMNS, validate_samples
from trackrec.errors import DataError


def sample(**overrides) -> dict:
    row = {
        "user_id": 1,
        "history_item_ids": [3, 4],
        "history_titles": ["A (1990)", "B (1991)"],
        "history_labels": [1, 0],
        "history_ratings": None,
        "target_item_id": 5,
        "target_title": "C (1992)",
        "label": 1,
        "timestamp": 1_000,
    }
    row.update(overrides)
    return row


def test_valid_frame_gets_canonical_dtypes():
    out = validate_samples(
        pd.DataFrame([sample(), sample(history_item_ids=[], history_titles=[], history_labels=[])]), "f"
    )
    assert list(out.columns) == list(SAMPLE_COLUMNS)
    assert out["label"].dtype == "int8" and out["user_id"].dtype == "int64"


def test_missing_column_is_named():
    frame = pd.DataFrame([sample()]).drop(columns="target_item_id")
    with pytest.raises(DataError, match=r"samples\.parquet.*field 'target_item_id'.*missing column"):
        validate_samples(frame, "samples.parquet")


def test_label_outside_binary_names_row():
    frame = pd.DataFrame([sample(), sample(label=2)])
    with pytest.raises(DataError, match=r"f, row 1, field 'label': must be 0 or 1, got 2"):
        validate_samples(frame, "f")


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"history_item_ids": None}, "history_item_ids", "must be a list"),
        ({"history_titles": ["only one"]}, "history_titles", "has 1 entries but history_item_ids has 2"),
        ({"history_item_ids": [0, 4]}, "history_item_ids", ">= 1"),
        ({"history_labels": [1, 5]}, "history_labels", "0 or 1"),
        ({"history_ratings": [4.0]}, "history_ratings", "has 1 entries"),
    ],
)
def test_malformed_history_names_row_and_field(override, field, message):
    frame = pd.DataFrame([sample(), sample(**override)])
    with pytest.raises(DataError, match=rf"row 1, field '{field}'.*{message}"):
        validate_samples(frame, "f")


def test_bad_user_id_is_named():
    with pytest.raises(DataError, match=r"row 0, field 'user_id'.*integer id >= 1"):
        validate_samples(pd.DataFrame([sample(user_id="x")]), "f")
