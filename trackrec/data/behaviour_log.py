"""Adapter for the production input: a behaviour-log parquet, one row per user-item event.

Required columns: `user_id` (int or string), `item_id` (int or string), `timestamp` (Unix seconds
or a datetime), `label` (0/1: clicked, converted or liked). Optional: `title` (item text; the item
id is used where absent), `rating` (numeric), `genres` (list of strings). Raw ids are renumbered
to dense ids in order of first appearance (0 stays the padding id); the mapping is kept in the
dataset's `users` and `items` tables. Events split by time: before `valid_start` train, before
`test_start` valid, the rest test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.data.schema import check_binary, first_bad_row, plain, require_columns
from trackrec.errors import DataError

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp", "label")


def _unix_seconds(values: pd.Series, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        seconds = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return (seconds.astype("int64") // 10**9).astype("int64")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        row = first_bad_row(numeric.isna().to_numpy())
        raise DataError(
            source, f"must be Unix seconds or a datetime, got {plain(values.iloc[row])!r}", row=row, field="timestamp"
        )
    return numeric.astype("int64")


def read_behaviour_log(path: Path) -> pd.DataFrame:
    source = str(path)
    if not Path(path).exists():
        raise DataError(source, "file not found")
    log = pd.read_parquet(path)
    require_columns(log, REQUIRED_COLUMNS, source)
    for field in ("user_id", "item_id"):
        if log[field].isna().any():
            raise DataError(source, "missing id", row=first_bad_row(log[field].isna().to_numpy()), field=field)
    check_binary(log["label"], source, "label")
    log = log.copy()
    log["timestamp"] = _unix_seconds(log["timestamp"], source)
    return log


def behaviour_log_events(log: pd.DataFrame, valid_start: int, test_start: int) -> pd.DataFrame:
    """Dense ids, time split, canonical order (user, timestamp, file row)."""
    if valid_start > test_start:
        raise DataError("behaviour log", f"valid_start ({valid_start}) is after test_start ({test_start})")
    log = log.reset_index(drop=True)
    log["_row"] = np.arange(len(log))
    users = {raw: new for new, raw in enumerate(pd.unique(log["user_id"]), start=1)}
    items = {raw: new for new, raw in enumerate(pd.unique(log["item_id"]), start=1)}
    split = np.where(log["timestamp"] < valid_start, "train", np.where(log["timestamp"] < test_start, "valid", "test"))
    events = pd.DataFrame(
        {
            "user_id": log["user_id"].map(users).astype("int64"),
            "item_id": log["item_id"].map(items).astype("int64"),
            "title": log["title"].astype(str) if "title" in log.columns else log["item_id"].astype(str),
            "label": log["label"].astype("int8"),
            "rating": log["rating"].astype("float64") if "rating" in log.columns else np.nan,
            "timestamp": log["timestamp"],
            "split": split,
            "raw_user_id": log["user_id"],
            "raw_item_id": log["item_id"],
            "_row": log["_row"],
        }
    )
    if "genres" in log.columns:
        events["genres"] = log["genres"]
    return (
        events.sort_values(["user_id", "timestamp", "_row"], kind="stable").drop(columns="_row").reset_index(drop=True)
    )
