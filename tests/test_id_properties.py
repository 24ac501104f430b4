"""Ids of every dtype where data enters: an embedding id is a whole number >= 1 (0 is the padding id)
or the row is refused by name; nothing is cut (1.7 -> 1), wrapped (a uint64 -> a negative int64)
or read as another id. A raw id of a behaviour log keeps its dense id whatever type the export used,
and genres given as one string are refused, not dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackrec.data.behaviour_log import behaviour_log_events, check_log
from trackrec.data.items import item_table
from trackrec.data.schema import ID_LIMIT, checked_ids
from trackrec.errors import DataError

FAST = settings(max_examples=300, deadline=None)
DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "object"]
EDGES = [0, 1, -1, 2, 255, 2**31, 2**53 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**64 - 1, 0.5, 1.7, -0.0, np.nan]


def column(values: list, dtype: str) -> pd.Series | None:
    """`values` stored as `dtype` (None where numpy cannot hold them as it); object: as text."""
    if dtype == "object":
        return pd.Series([str(v) for v in values], dtype=object)
    with np.errstate(all="ignore"):
        try:
            stored = np.array(values, dtype=np.float64 if "float" in dtype else object).astype(dtype)
        except (OverflowError, ValueError, TypeError):
            return None
    return pd.Series(stored)


def exact(value):
    """The number a stored value is, as Python reads it exactly (None: not a number)."""
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".en") else int(value)
        except ValueError:
            return None
    return value.item() if isinstance(value, np.generic) else value


@FAST
@given(
    values=st.lists(st.one_of(st.sampled_from(EDGES), st.integers(-5, 2**64), st.floats()), min_size=1, max_size=8),
    dtype=st.sampled_from(DTYPES),
)
def test_an_id_column_is_taken_exactly_or_refused_at_its_first_bad_row(values, dtype):
    series = column(values, dtype)
    if series is None:
        return
    numbers = [exact(v) for v in series]
    good = [n is not None and n == n and 1 <= n < ID_LIMIT and float(n).is_integer() and int(n) == n for n in numbers]
    try:
        ids = checked_ids(series, "log", "user_id")
    except DataError as refused:
        assert not all(good) and refused.row == good.index(False) and refused.field == "user_id"
        return
    assert all(good) and ids.dtype == np.int64 and ids.tolist() == [int(n) for n in numbers]


def test_booleans_are_not_ids():
    with pytest.raises(DataError, match="booleans"):
        checked_ids(pd.Series([True, True]), "log", "user_id")


def log(user_ids, **extra) -> pd.DataFrame:
    n = len(user_ids)
    return pd.DataFrame(
        {"user_id": user_ids, "item_id": np.arange(1, n + 1), "timestamp": np.arange(n) + 10**9, "label": [1] * n}
        | extra
    )


@FAST
@given(raw=st.lists(st.integers(-(2**53) + 1, 2**53 - 1), min_size=1, max_size=6))
def test_a_raw_id_keeps_its_dense_id_whether_exported_as_integers_or_floats(raw):
    as_ints = behaviour_log_events(check_log(log(np.array(raw, np.int64)), "ints"), 2 * 10**9, 3 * 10**9)[2]
    as_floats = behaviour_log_events(check_log(log(np.array(raw, np.float64)), "floats"), 2 * 10**9, 3 * 10**9)[2]
    pd.testing.assert_frame_equal(as_ints["user"], as_floats["user"])


@pytest.mark.parametrize("bad,row", [([1.0, 2.5], 1), ([1.0, 2.0**60], 1)])
def test_a_raw_float_id_that_is_not_a_whole_number_is_refused(bad, row):
    with pytest.raises(DataError, match="must be a whole number") as refused:
        check_log(log(bad), "log.csv")
    assert refused.value.row == row and refused.value.field == "user_id"


def test_uint64_raw_ids_are_neither_wrapped_nor_merged():
    raw = np.array([2**64 - 1, 2**63, 1], np.uint64)
    maps = behaviour_log_events(check_log(log(raw), "log"), 2 * 10**9, 3 * 10**9)[2]
    assert sorted(maps["user"].raw_id) == sorted(str(v) for v in raw.tolist())


@pytest.mark.parametrize("genres", ["Action|Comedy", 7, [["nested"]], ["Drama", 3]])
def test_genres_that_are_not_a_list_of_strings_are_refused_not_dropped(genres):
    frame = log([1, 2], genres=[["Drama"], genres])
    with pytest.raises(DataError, match="genres|must be a list of strings") as refused:
        behaviour_log_events(check_log(frame, "log"), 2 * 10**9, 3 * 10**9)
    assert refused.value.row == 1 and refused.value.field == "genres"


def test_listed_and_missing_genres_are_kept():
    frame = log([1, 2, 3], genres=[["Drama", "War"], None, np.array(["Comedy"], object)])
    events, rows, _ = behaviour_log_events(check_log(frame, "log"), 2 * 10**9, 3 * 10**9)
    items = item_table(events.merge(rows, on="item_id"))
    assert items.genres.tolist() == [["Drama", "War"], [], ["Comedy"]]
