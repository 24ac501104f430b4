"""Adapter for the production input: a behaviour-log parquet, one row per user-item event.

Required columns: `user_id` (int or string), `item_id` (int or string), `timestamp` (Unix seconds,
or a datetime of any unit; zone-aware ones are converted to UTC, naive ones are taken as UTC),
`label` (0/1: clicked, converted or liked). Optional: `title` (item text; the item id where absent
or missing, capped at TITLE_MAX characters), `rating` (numeric), `genres` (list of strings).

Events that repeat a (user, item, timestamp) are the same event exported twice: the last in file
order is kept and the count of the others is reported, so a sample's own target never lands in its
history. Raw ids become dense ids (0 stays the padding id) in order of first event time, then raw
id, so a re-export of the same events in another row order gives the same ids; with an id map from
earlier runs, known raw ids keep their dense ids and new ones are appended. Events split by time:
before `valid_start` train, before `test_start` valid, the rest test.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.data.schema import check_binary, first_bad_row, plain, require_columns
from trackrec.errors import DataError

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp", "label")
TITLE_MAX = 200  # characters of an item title kept: titles are untrusted text in every prompt
EARLIEST, LATEST = (
    pd.Timestamp("1970-01-01"),
    pd.Timestamp("2200-01-01"),
)  # a Unix-seconds epoch out of these is a unit error
_log = logging.getLogger(__name__)


def _unix_seconds(values: pd.Series, source: str) -> pd.Series:
    """Unix seconds from datetimes of any unit and zone, or from numbers already in seconds."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        seconds = pd.to_numeric(values)
        missing = seconds.isna().to_numpy()
        if missing.any():
            raise DataError(source, "missing timestamp", row=first_bad_row(missing), field="timestamp")
        low, high = EARLIEST.timestamp(), LATEST.timestamp()
        outside = ((seconds < low) | (seconds >= high)).to_numpy()
        if outside.any():
            row = first_bad_row(outside)
            raise DataError(
                source,
                f"{plain(values.iloc[row])!r} is not Unix seconds between 1970 and 2200 "
                "(milliseconds or microseconds? write seconds, or a datetime column)",
                row=row,
                field="timestamp",
            )
        return seconds.astype("int64")
    try:
        stamps = pd.to_datetime(values, utc=True)  # zone-aware: to UTC; naive: taken as UTC; any unit
    except (ValueError, TypeError, OverflowError) as error:
        parsed = pd.to_datetime(values, utc=True, errors="coerce")
        row = first_bad_row(parsed.isna().to_numpy() & values.notna().to_numpy())
        raise DataError(
            source, f"must be Unix seconds or a datetime, got {plain(values.iloc[row])!r}", row=row, field="timestamp"
        ) from error
    missing = stamps.isna().to_numpy()
    if missing.any():
        raise DataError(source, "missing timestamp (NaT)", row=first_bad_row(missing), field="timestamp")
    naive = stamps.dt.tz_localize(None)
    outside = ((naive < EARLIEST) | (naive >= LATEST)).to_numpy()
    if outside.any():
        row = first_bad_row(outside)
        raise DataError(source, f"{naive.iloc[row]} is outside 1970-2200", row=row, field="timestamp")
    return ((naive - EARLIEST) // pd.Timedelta(seconds=1)).astype("int64")


def _read_parquet(path: Path, source: str) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(source, f"not a readable parquet file ({first})") from error


def read_behaviour_log(path: Path) -> pd.DataFrame:
    """The log, checked: ids present, labels binary, timestamps as Unix seconds, ratings numeric,
    repeated events dropped (their count in `.attrs["dropped_duplicates"]`)."""
    source = str(path)
    if not Path(path).exists():
        raise DataError(source, "file not found")
    log = _read_parquet(Path(path), source)
    require_columns(log, REQUIRED_COLUMNS, source)
    if log.empty:
        raise DataError(source, "no events")
    for field in ("user_id", "item_id"):
        if log[field].isna().any():
            raise DataError(source, "missing id", row=first_bad_row(log[field].isna().to_numpy()), field=field)
    check_binary(log["label"], source, "label")
    log = log.copy()
    log["timestamp"] = _unix_seconds(log["timestamp"], source)
    if "rating" in log.columns:
        ratings = pd.to_numeric(log["rating"], errors="coerce")
        bad = (ratings.isna() & log["rating"].notna()).to_numpy()
        if bad.any():
            row = first_bad_row(bad)
            raise DataError(source, f"not a number: {plain(log['rating'].iloc[row])!r}", row=row, field="rating")
        log["rating"] = ratings
    repeated = log.duplicated(["user_id", "item_id", "timestamp"], keep="last").to_numpy()
    if repeated.any():
        _log.warning("%s: dropped %d repeated events (same user, item and timestamp)", source, repeated.sum())
    log = log[~repeated].reset_index(drop=True)
    log.attrs["dropped_duplicates"] = int(repeated.sum())
    return log


def _titles(log: pd.DataFrame) -> pd.Series:
    """Per-row titles: the item id where missing, capped at TITLE_MAX characters."""
    ids = log["item_id"].astype(str)
    if "title" not in log.columns:
        return ids
    titles = log["title"].where(log["title"].notna(), ids).astype(str)
    return titles.where(titles.str.strip() != "", ids).str.slice(0, TITLE_MAX)


def dense_ids(raw: pd.Series, timestamps: pd.Series, known: pd.DataFrame | None) -> pd.DataFrame:
    """raw_id (as text) -> dense id: `known` ones kept, new ones appended in order of first event
    time, then raw id (independent of the file's row order)."""
    first = pd.DataFrame({"raw_id": raw.astype(str), "t": timestamps}).groupby("raw_id", sort=False)["t"].min()
    order = first.reset_index().sort_values(["t", "raw_id"], kind="stable")["raw_id"]
    known = (
        known if known is not None else pd.DataFrame({"raw_id": pd.Series(dtype=str), "id": pd.Series(dtype="int64")})
    )
    new = order[~order.isin(known["raw_id"])]
    start = int(known["id"].max()) + 1 if len(known) else 1
    added = pd.DataFrame({"raw_id": new.to_numpy(), "id": np.arange(start, start + len(new), dtype="int64")})
    return pd.concat([known[["raw_id", "id"]], added], ignore_index=True)


def behaviour_log_events(
    log: pd.DataFrame, valid_start: int, test_start: int, id_maps: dict[str, pd.DataFrame] | None = None
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Dense ids, time split, canonical order (user, timestamp, item: no file order); and the id maps used
    ("user", "item": raw_id -> id), the given ones extended by the new raw ids."""
    if valid_start > test_start:
        raise DataError("behaviour log", f"valid_start ({valid_start}) is after test_start ({test_start})")
    id_maps = id_maps or {}
    log = log.reset_index(drop=True)
    maps = {kind: dense_ids(log[f"{kind}_id"], log["timestamp"], id_maps.get(kind)) for kind in ("user", "item")}
    dense = {kind: log[f"{kind}_id"].astype(str).map(maps[kind].set_index("raw_id")["id"]) for kind in maps}
    split = np.where(log["timestamp"] < valid_start, "train", np.where(log["timestamp"] < test_start, "valid", "test"))
    events = pd.DataFrame(
        {
            "user_id": dense["user"].astype("int64"),
            "item_id": dense["item"].astype("int64"),
            "title": _titles(log),
            "label": log["label"].astype("int8"),
            "rating": log["rating"].astype("float64") if "rating" in log.columns else np.nan,
            "timestamp": log["timestamp"],
            "split": split,
            "raw_user_id": log["user_id"],
            "raw_item_id": log["item_id"],
        }
    )
    if "genres" in log.columns:
        events["genres"] = log["genres"]
    ordered = events.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    return ordered.reset_index(drop=True), maps
