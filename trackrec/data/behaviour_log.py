"""Adapter for the production input: a behaviour log in parquet (one file, or a folder of parts as
Spark writes them), one row per user-item event.

Required columns: `user_id` (int or string), `item_id` (int or string), `timestamp` (Unix seconds,
or a datetime of any unit; zone-aware ones are converted to UTC, naive ones are taken as UTC),
`label` (0/1: clicked, converted or liked). Optional: `title` (item text; the item id where absent
or missing, capped at TITLE_MAX characters), `rating` (numeric), `genres` (list of strings),
`conversion` (0/1: converted after the click; 1 requires label 1, the post-click label a CVR model
learns).

Events that repeat a (user, item, timestamp) are the same event exported twice: the last in file
order is kept and the count of the others is reported, so a sample's own target never lands in its
history. Raw ids become dense ids (0 stays the padding id) in order of first event time, then raw
id, so a re-export of the same events in another row order gives the same ids; with an id map from
earlier runs, known raw ids keep their dense ids and new ones are appended. Events split by time:
before `valid_start` train, before `test_start` valid, the rest test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from trackrec.data.items import genre_lists
from trackrec.data.schema import (
    EARLIEST,
    ID_LIMIT,
    LATEST,
    SECONDS_RANGE,
    check_binary,
    first_bad_row,
    plain,
    require_columns,
)
from trackrec.errors import DataError

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp", "label")
OPTIONAL_COLUMNS = ("title", "rating", "genres", "conversion")
SORT_BLOCK = 65_536  # events per block of the canonical sort (cache-sized)
TITLE_MAX = 200  # characters of an item title kept: titles are untrusted text in every prompt
_log = logging.getLogger(__name__)


def _unix_seconds(values: pd.Series, source: str) -> pd.Series:
    """Unix seconds from datetimes of any unit and zone, or from numbers already in seconds."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        seconds = pd.to_numeric(values)
        missing = seconds.isna().to_numpy()
        if missing.any():
            raise DataError(source, "missing timestamp", row=first_bad_row(missing), field="timestamp")
        low, high = SECONDS_RANGE
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


def log_parts(path: Path) -> ds.Dataset:
    """The log's parquet file or folder of parts (Spark's `_SUCCESS` and hidden files skipped)."""
    if not Path(path).exists():
        raise DataError(str(path), "file or folder not found")
    try:
        return ds.dataset(path, format="parquet")
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _unreadable(str(path), error) from error


def _unreadable(source: str, error: Exception) -> DataError:
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return DataError(source, f"not a readable parquet file or folder of parquet files ({first})")


def _read_parquet(path: Path, source: str, users: list[str] | None) -> pd.DataFrame:
    """The columns we use, of every event or of `users`' (raw ids as text); text columns arrive
    dictionary-encoded (categorical): a title or a string id repeated across millions of events is
    stored once."""
    parts = log_parts(path)
    wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in parts.schema.names]
    try:
        table = parts.to_table(columns=wanted, filter=None if users is None else _of_users(parts, users))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise _unreadable(source, error) from error
    return _dictionary_text(table).to_pandas()


def _dictionary_text(table: pa.Table) -> pa.Table:
    """Text ids and titles dictionary-encoded: pandas then holds each distinct string once."""
    for name in ("user_id", "item_id", "title"):
        if name in table.column_names and pa.types.is_string(table.schema.field(name).type):
            table = table.set_column(table.column_names.index(name), name, table[name].dictionary_encode())
    return table


def _of_users(parts: ds.Dataset, users: list[str]) -> ds.Expression:
    """A filter keeping the events of `users` (raw ids as text, cast to the log's own id type)."""
    kind = parts.schema.field("user_id").type
    kind = kind.value_type if pa.types.is_dictionary(kind) else kind
    return ds.field("user_id").isin(pa.array(users, pa.string()).cast(kind))


def read_behaviour_log(path: Path, users: list[str] | None = None) -> pd.DataFrame:
    """The log (only `users`' events, where given), checked: ids present, labels binary, timestamps
    as Unix seconds, ratings numeric."""
    return check_log(_read_parquet(Path(path), str(path), users), str(path))


def scan_ids(path: Path, batch_rows: int = 1 << 20) -> Iterator[pd.DataFrame]:
    """The log's user_id, item_id and timestamp (Unix seconds) in batches of about `batch_rows`
    events, checked as `check_log` checks them: memory independent of the log's size."""
    source, offset = str(path), 0
    parts = log_parts(path)
    # every column the shards will need, not only these: fail before any shard starts
    require_columns(pd.DataFrame(columns=parts.schema.names), REQUIRED_COLUMNS, source)
    try:
        for batch in parts.to_batches(columns=["user_id", "item_id", "timestamp"], batch_size=batch_rows):
            frame = _dictionary_text(pa.Table.from_batches([batch])).to_pandas()
            try:
                _check_ids(frame, source)
                frame["timestamp"] = _unix_seconds(frame["timestamp"], source)
            except DataError as error:  # a row is counted from the log's first, not the batch's
                raise DataError(source, error.message, row=error.row + offset, field=error.field) from error
            offset += len(frame)
            yield frame
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(source, error) from error


def check_log(log: pd.DataFrame, source: str) -> pd.DataFrame:
    """A log read from any file format, checked the same way."""
    require_columns(log, REQUIRED_COLUMNS, source)
    if log.empty:
        raise DataError(source, "no events")
    _check_ids(log, source)
    check_binary(log["label"], source, "label")
    log["timestamp"] = _unix_seconds(log["timestamp"], source)
    if "rating" in log.columns:
        ratings = pd.to_numeric(log["rating"], errors="coerce")
        bad = (ratings.isna() & log["rating"].notna()).to_numpy()
        if bad.any():
            row = first_bad_row(bad)
            raise DataError(source, f"not a number: {plain(log['rating'].iloc[row])!r}", row=row, field="rating")
        log["rating"] = ratings
    if "conversion" in log.columns:
        check_conversions(log["conversion"], log["label"], source)
    return log


def check_conversions(conversion: pd.Series, label: pd.Series, source: str) -> None:
    """Conversions are 0/1 and follow a click: a conversion on a row with label 0 is refused, named."""
    check_binary(conversion, source, "conversion")
    orphan = (conversion.to_numpy() == 1) & (label.to_numpy() == 0)
    if orphan.any():
        raise DataError(
            source,
            "a conversion without a click (label 0): conversions are post-click",
            row=first_bad_row(orphan),
            field="conversion",
        )


def _check_ids(log: pd.DataFrame, source: str) -> None:
    """Raise naming the first row without a user or item id, or with one that is not an integer or a
    string: a boolean, or a fractional float (numbering would keep 1.5 apart from 1 but a re-export
    as integers would not). Whole floats become int64, so an id is named "7" whichever type the
    export used (a CSV with a gap reads an integer column as floats)."""
    for field in ("user_id", "item_id"):
        values = log[field]
        absent = values.isna().to_numpy()
        if absent.any():
            raise DataError(source, "missing id", row=first_bad_row(absent), field=field)
        if pd.api.types.is_bool_dtype(values):
            raise DataError(source, "must be integer or string ids, got a column of booleans", field=field)
        if pd.api.types.is_float_dtype(values):
            numbers = values.to_numpy(np.float64)
            fractional = ~((numbers == np.floor(numbers)) & (np.abs(numbers) < ID_LIMIT))
            if fractional.any():
                row = first_bad_row(fractional)
                raise DataError(
                    source, f"must be a whole number, got {plain(values.iloc[row])!r}", row=row, field=field
                )
            log[field] = numbers.astype(np.int64)


def _clean_titles(titles: pd.Series, raw_ids: pd.Series) -> pd.Series:
    """Item titles: the raw item id where missing or blank, capped at TITLE_MAX characters."""
    text = titles.astype(object).where(titles.notna(), None)
    cleaned = pd.Series([None if t is None else str(t)[:TITLE_MAX] for t in text], index=titles.index, dtype=object)
    usable = cleaned.notna() & (cleaned.fillna("").str.strip() != "")
    return cleaned.where(usable, raw_ids.astype(str))


def first_seen(raw: pd.Series, timestamps: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """(each row's code, one row per distinct raw id: its first event time `first` and its event
    count `events`, indexed by the raw id)."""
    codes, uniques = pd.factorize(raw)
    first = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, timestamps)
    events = np.bincount(codes, minlength=len(uniques))
    return codes, pd.DataFrame({"first": first, "events": events}, index=pd.Index(np.asarray(uniques)))


def numbered(seen: pd.DataFrame, known: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """(raw_id (as text) -> dense id map, the dense id of each row of `seen`): `known` ids kept, new
    ones appended in order of first event time, then raw id (by value for integer ids, as text
    otherwise), so neither the file's row order nor how the log was read changes them."""
    values = seen.index.to_numpy()
    names = values.astype(str)
    numeric = np.issubdtype(values.dtype, np.integer)
    order = np.lexsort((values if numeric else names, seen["first"].to_numpy()))
    known = (
        known if known is not None else pd.DataFrame({"raw_id": pd.Series(dtype=str), "id": pd.Series(dtype="int64")})
    )
    id_of = pd.Series(known["id"].to_numpy(), index=known["raw_id"].to_numpy()).reindex(names).to_numpy()
    new = order[np.isnan(id_of[order])]
    start = int(known["id"].max()) + 1 if len(known) else 1
    id_of[new] = np.arange(start, start + len(new))
    added = pd.DataFrame({"raw_id": names[new], "id": np.arange(start, start + len(new), dtype="int64")})
    mapping = pd.concat([known[["raw_id", "id"]], added], ignore_index=True)
    return mapping, id_of.astype(np.int64)


def dense_ids(raw: pd.Series, timestamps: pd.Series, known: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """(raw_id (as text) -> dense id map, each row's dense id), numbered as `numbered` says."""
    codes, seen = first_seen(raw, timestamps.to_numpy(np.int64))
    mapping, ids = numbered(seen, known)
    return mapping, ids[codes]


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
        },
        copy=False,  # fresh arrays: no consolidating copy into one block (0.4 s at 10M events)
    )
    if "conversion" in log.columns:
        events["conversion"] = log["conversion"].to_numpy()[kept].astype(np.int8)
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
        out["genres"] = genre_lists(log["genres"].iloc[rows], "behaviour log", rows).to_numpy()
    return out
