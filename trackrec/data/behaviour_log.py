"""Adapter for the production input: a behaviour log in parquet (one file, or a folder of parts as
Spark writes them), one row per user-item event.

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
OPTIONAL_COLUMNS = ("title", "rating", "genres")
SORT_BLOCK = 65_536  # events per block of the canonical sort (cache-sized)
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
    """The columns we use, from a parquet file or a folder of parts (Spark's `_SUCCESS` and hidden
    files skipped); text columns arrive dictionary-encoded (categorical): a title or a string id
    repeated across millions of events is stored once."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        parts = ds.dataset(path, format="parquet")
        wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in parts.schema.names]
        table = parts.to_table(columns=wanted)
    except (pa.ArrowException, OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(source, f"not a readable parquet file or folder of parquet files ({first})") from error
    for name in ("user_id", "item_id", "title"):
        if name in table.column_names and pa.types.is_string(table.schema.field(name).type):
            table = table.set_column(table.column_names.index(name), name, table[name].dictionary_encode())
    return table.to_pandas()


def read_behaviour_log(path: Path) -> pd.DataFrame:
    """The log, checked: ids present, labels binary, timestamps as Unix seconds, ratings numeric."""
    source = str(path)
    if not Path(path).exists():
        raise DataError(source, "file or folder not found")
    return check_log(_read_parquet(Path(path), source), source)


def check_log(log: pd.DataFrame, source: str) -> pd.DataFrame:
    """A log read from any file format, checked the same way."""
    require_columns(log, REQUIRED_COLUMNS, source)
    if log.empty:
        raise DataError(source, "no events")
    for field in ("user_id", "item_id"):
        if log[field].isna().any():
            raise DataError(source, "missing id", row=first_bad_row(log[field].isna().to_numpy()), field=field)
    check_binary(log["label"], source, "label")
    log["timestamp"] = _unix_seconds(log["timestamp"], source)
    if "rating" in log.columns:
        ratings = pd.to_numeric(log["rating"], errors="coerce")
        bad = (ratings.isna() & log["rating"].notna()).to_numpy()
        if bad.any():
            row = first_bad_row(bad)
            raise DataError(source, f"not a number: {plain(log['rating'].iloc[row])!r}", row=row, field="rating")
        log["rating"] = ratings
    return log


def _clean_titles(titles: pd.Series, raw_ids: pd.Series) -> pd.Series:
    """Item titles: the raw item id where missing or blank, capped at TITLE_MAX characters."""
    text = titles.astype(object).where(titles.notna(), None)
    cleaned = pd.Series([None if t is None else str(t)[:TITLE_MAX] for t in text], index=titles.index, dtype=object)
    usable = cleaned.notna() & (cleaned.fillna("").str.strip() != "")
    return cleaned.where(usable, raw_ids.astype(str))


def dense_ids(raw: pd.Series, timestamps: pd.Series, known: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """(raw_id (as text) -> dense id map, each row's dense id): `known` ids kept, new ones appended in
    order of first event time, then raw id (by value for integer ids, as text otherwise), so the
    file's row order changes nothing."""
    codes, uniques = pd.factorize(raw)
    first = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, timestamps.to_numpy(np.int64))
    values = np.asarray(uniques)
    names = values.astype(str)
    numeric = np.issubdtype(values.dtype, np.integer)
    order = np.lexsort((values if numeric else names, first))
    known = (
        known if known is not None else pd.DataFrame({"raw_id": pd.Series(dtype=str), "id": pd.Series(dtype="int64")})
    )
    id_of_code = pd.Series(known["id"].to_numpy(), index=known["raw_id"].to_numpy()).reindex(names).to_numpy()
    new = order[np.isnan(id_of_code[order])]
    start = int(known["id"].max()) + 1 if len(known) else 1
    id_of_code[new] = np.arange(start, start + len(new))
    added = pd.DataFrame({"raw_id": names[new], "id": np.arange(start, start + len(new), dtype="int64")})
    mapping = pd.concat([known[["raw_id", "id"]], added], ignore_index=True)
    return mapping, id_of_code.astype(np.int64)[codes]


def behaviour_log_events(
    log: pd.DataFrame, valid_start: int, test_start: int, id_maps: dict[str, pd.DataFrame] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """(events, item rows, id maps). events: dense ids, time split, canonical order (user, timestamp,
    item: no file order), repeated events dropped (their count in `.attrs["dropped_duplicates"]`);
    item rows: each item's first event in that order with its cleaned title (and genres), what the
    item table is built from; id maps: "user", "item": raw_id -> id, the given ones extended."""
    if valid_start > test_start:
        raise DataError("behaviour log", f"valid_start ({valid_start}) is after test_start ({test_start})")
    id_maps = id_maps or {}
    log = log if isinstance(log.index, pd.RangeIndex) and log.index.start == 0 else log.reset_index(drop=True)
    maps, dense = {}, {}
    for kind in ("user", "item"):
        maps[kind], dense[kind] = dense_ids(log[f"{kind}_id"], log["timestamp"], id_maps.get(kind))
    stamps = log["timestamp"].to_numpy(np.int64)
    order = canonical_order(dense["user"], stamps, dense["item"])
    users, times, items = dense["user"][order], stamps[order], dense["item"][order]
    repeated = np.zeros(len(order), bool)  # stable sort: repeats in file order, only the last is kept
    repeated[:-1] = (users[1:] == users[:-1]) & (times[1:] == times[:-1]) & (items[1:] == items[:-1])
    if repeated.any():
        _log.warning("dropped %d repeated events (same user, item and timestamp)", repeated.sum())
    kept = order[~repeated]
    split_code = np.searchsorted([valid_start, test_start], stamps[kept], side="right").astype(np.int8)
    events = pd.DataFrame(
        {
            "user_id": users[~repeated],
            "item_id": items[~repeated],
            "label": log["label"].to_numpy()[kept].astype(np.int8),
            "rating": log["rating"].to_numpy(np.float64)[kept] if "rating" in log.columns else np.nan,
            "timestamp": times[~repeated],
            "split": pd.Categorical.from_codes(split_code, ["train", "valid", "test"]),
        }
    )
    events.attrs["dropped_duplicates"] = int(repeated.sum())
    return events, _item_rows(log, events, kept), maps


def canonical_order(users: np.ndarray, stamps: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Indices that sort events by (user, timestamp, item), stably. Events are first bucketed into
    blocks of consecutive users (a linear radix pass) and each block, small enough for the caches, is
    sorted on its own: the cost grows linearly with the log, not as n log n over memory."""
    import pyarrow as pa
    import pyarrow.compute as pc

    blocks = min(max(1, len(users) // SORT_BLOCK), 65_535)
    block = (users * blocks // (int(users.max()) + 1)).astype(np.uint16)  # 16-bit keys: numpy's radix sort
    bucketed = np.argsort(block, kind="stable")
    bounds = np.searchsorted(block[bucketed], np.arange(blocks + 1))
    keys = [("u", "ascending"), ("t", "ascending"), ("i", "ascending")]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        part = bucketed[start:stop]
        table = pa.table({"u": users[part], "t": stamps[part], "i": items[part]})
        bucketed[start:stop] = part[pc.sort_indices(table, keys).to_numpy()]
    return bucketed


def _item_rows(log: pd.DataFrame, events: pd.DataFrame, kept: np.ndarray) -> pd.DataFrame:
    """Each item's first event (in canonical order): its dense id, cleaned title and genres."""
    first = np.flatnonzero(~pd.Series(events["item_id"].to_numpy()).duplicated().to_numpy())
    rows = kept[first]
    titles = log["title"].iloc[rows] if "title" in log.columns else pd.Series([None] * len(rows))
    raw_ids = log["item_id"].iloc[rows].reset_index(drop=True)
    out = pd.DataFrame({"item_id": events["item_id"].to_numpy()[first]})
    out["title"] = _clean_titles(titles.reset_index(drop=True), raw_ids).to_numpy()
    if "genres" in log.columns:
        out["genres"] = log["genres"].iloc[rows].to_numpy()
    return out
