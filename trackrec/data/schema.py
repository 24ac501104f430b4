"""The canonical tables every adapter produces and every stage reads.

A prepared dataset stores every event as a sample, with its history as a row range of one flat
history table (trackrec/data/history.py):

samples (one row per event, grouped by user, in time order)
| column            | type           | meaning                                               |
|-------------------|----------------|-------------------------------------------------------|
| user_id           | int64 >= 1     | dense user id (0 is padding)                          |
| target_item_id    | int64 >= 1     | the item shown                                        |
| label             | int8 in {0,1}  | 1 if the user liked / clicked it                      |
| timestamp         | int64          | Unix seconds of the event                             |
| split             | string         | train, valid or test                                  |
| history_start     | int64          | first history row (oldest item)                       |
| history_end       | int64          | one past the last history row; end - start <= max     |
| conversion        | int8 in {0,1}  | optional (OPTIONAL_SAMPLE_TYPES): converted after the  |
|                   |                | click; 1 only where label is 1                        |

history
| item_id           | int64 >= 1     | an earlier item                                       |
| label             | int8 in {0,1}  | 1 liked / 0 disliked                                  |
| rating            | float32        | raw rating where the source has one, else NaN         |

Stages that prompt an LLM read sample rows with the history as lists (ROW_COLUMNS): the same
sample, its history's ids, titles (from the item table), labels and ratings, oldest first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackrec.errors import DataError

SAMPLE_TYPES: dict[str, str] = {
    "user_id": "int64",
    "target_item_id": "int64",
    "label": "int8",
    "timestamp": "int64",
    "split": "category",
    "history_start": "int64",
    "history_end": "int64",
}
OPTIONAL_SAMPLE_TYPES: dict[str, str] = {"conversion": "int8"}  # kept where the source has them
HISTORY_TYPES: dict[str, str] = {"item_id": "int64", "label": "int8", "rating": "float32"}
ROW_COLUMNS: tuple[str, ...] = (
    "user_id",
    "history_item_ids",
    "history_titles",
    "history_labels",
    "history_ratings",
    "target_item_id",
    "target_title",
    "label",
    "timestamp",
)
SPLITS: tuple[str, ...] = ("train", "valid", "test")
# timestamps are Unix seconds of these years: a value outside is another unit (milliseconds, or the
# nanoseconds pandas makes of a datetime)
EARLIEST, LATEST = pd.Timestamp("1970-01-01"), pd.Timestamp("2200-01-01")
SECONDS_RANGE = (int(EARLIEST.timestamp()), int(LATEST.timestamp()))


def require_columns(frame: pd.DataFrame, columns, source: str) -> None:
    """Raise naming the first missing column and listing what was expected."""
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                source,
                f"missing column '{column}' (expected {list(columns)}, found {list(frame.columns)})",
                field=column,
            )


def first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def plain(value):
    """A numpy scalar as the Python value it holds, so messages read `2`, not `np.int64(2)`."""
    return value.item() if isinstance(value, np.generic) else value


def check_binary(values: pd.Series, source: str, field: str) -> None:
    """Raise naming the first row whose value is not 0 or 1."""
    bad = ~values.isin([0, 1]).to_numpy()
    if bad.any():
        row = first_bad_row(bad)
        raise DataError(source, f"must be 0 or 1, got {plain(values.iloc[row])!r}", row=row, field=field)


ID_LIMIT = 2**53  # ids from here on are not exact as floats, and no embedding table is that large


def checked_ids(values: pd.Series, source: str, field: str, first_row: int = 0) -> np.ndarray:
    """Embedding ids as int64, each a whole number in 1..ID_LIMIT-1 (0 is the padding id); names the
    first row that is missing, fractional (a float id would be cut), below 1, too large (a uint64
    that int64 would wrap to a negative id) or a boolean (counted from `first_row`)."""
    if pd.api.types.is_bool_dtype(values):
        raise DataError(source, "must be integer ids >= 1, got a column of booleans", field=field)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = ~((numbers >= 1) & (numbers < ID_LIMIT) & (numbers == np.floor(numbers)))  # NaN fails every test
    if bad.any():
        row = first_bad_row(bad)
        raise DataError(
            source, f"must be an integer id >= 1, got {plain(values.iloc[row])!r}", row=first_row + row, field=field
        )
    return numbers.astype(np.int64)


def check_positive_ids(values: pd.Series, source: str, field: str) -> None:
    checked_ids(values, source, field)


def _check(bad: np.ndarray, source: str, field: str, message: str, values) -> None:
    if bad.any():
        row = first_bad_row(bad)
        raise DataError(source, f"{message}, got {plain(values[row])!r}", row=row, field=field)


def _whole(values: np.ndarray) -> np.ndarray:
    """Which values are whole numbers (of an integer column: all; NaN: none)."""
    if np.issubdtype(values.dtype, np.integer):
        return np.ones(len(values), bool)
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    return numbers == np.floor(numbers)


def validate_tables(samples: pd.DataFrame, history: pd.DataFrame, max_len: int, source: str) -> None:
    """Check both tables, vectorised (once, when a dataset is written); raise naming the table, row
    and field of the first problem."""
    require_columns(samples, tuple(SAMPLE_TYPES), f"{source}/samples")
    require_columns(history, tuple(HISTORY_TYPES), f"{source}/history")
    for field in ("user_id", "target_item_id"):
        check_positive_ids(samples[field], f"{source}/samples", field)
    check_binary(samples["label"], f"{source}/samples", "label")
    if "conversion" in samples:
        check_binary(samples["conversion"], f"{source}/samples", "conversion")
        orphan = (samples["conversion"].to_numpy() == 1) & (samples["label"].to_numpy() == 0)
        _check(
            orphan,
            f"{source}/samples",
            "conversion",
            "a conversion without a click: label must be 1",
            samples["label"].to_numpy(),
        )
    stamps = samples["timestamp"].to_numpy()
    _check(
        ~((stamps >= SECONDS_RANGE[0]) & (stamps < SECONDS_RANGE[1]) & _whole(stamps)),  # NaN fails too
        f"{source}/samples",
        "timestamp",
        "must be whole Unix seconds between 1970 and 2200",
        stamps,
    )
    _check(
        ~samples["split"].isin(SPLITS).to_numpy(),
        f"{source}/samples",
        "split",
        f"must be one of {SPLITS}",
        samples["split"].to_numpy(),
    )
    start, end = samples["history_start"].to_numpy(), samples["history_end"].to_numpy()
    for field, values in (("history_start", start), ("history_end", end)):
        _check(~_whole(values), f"{source}/samples", field, "must be a whole row number", values)
    _check(
        (start < 0) | (end < start) | (end > len(history)),
        f"{source}/samples",
        "history_end",
        f"must lie in 0..{len(history)} and not before history_start",
        end,
    )
    _check(end - start > max_len, f"{source}/samples", "history_end", f"spans more than {max_len} rows", end - start)
    check_positive_ids(history["item_id"], f"{source}/history", "item_id")
    check_binary(history["label"], f"{source}/history", "label")
