"""The one canonical sample schema every adapter produces and every stage reads.

A sample is one (user, target item) event with the user's history as it stood before it:

| column            | type           | meaning                                               |
|-------------------|----------------|-------------------------------------------------------|
| user_id           | int64 >= 1     | dense user id (0 is padding)                          |
| history_item_ids  | list<int64>    | earlier items, oldest first, ids >= 1                 |
| history_titles    | list<string>   | their titles, same length                             |
| history_labels    | list<int8>     | 1 liked / 0 disliked, same length                     |
| history_ratings   | list<float>    | raw ratings where the source has them, else null      |
| target_item_id    | int64 >= 1     | the item shown                                        |
| target_title      | string         | its title                                             |
| label             | int8 in {0,1}  | 1 if the user liked / clicked it                      |
| timestamp         | int64          | Unix seconds of the event                             |

An empty history is valid (a user's first event); a missing one (null) is not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackrec.errors import DataError

SAMPLE_COLUMNS: tuple[str, ...] = (
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
_LIST_COLUMNS = ("history_item_ids", "history_titles", "history_labels")


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


def check_positive_ids(values: pd.Series, source: str, field: str) -> None:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = (numeric.isna() | (numeric < 1) | (numeric != np.floor(numeric))).to_numpy()
    if bad.any():
        row = first_bad_row(bad)
        raise DataError(source, f"must be an integer id >= 1, got {plain(values.iloc[row])!r}", row=row, field=field)


def _check_history(row: int, ids, titles, labels, ratings, source: str) -> None:
    for field, value in (("history_item_ids", ids), ("history_titles", titles), ("history_labels", labels)):
        if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise DataError(source, f"history must be a list, got {value!r}", row=row, field=field)
    n = len(ids)
    for field, value in (("history_titles", titles), ("history_labels", labels)):
        if len(value) != n:
            raise DataError(source, f"has {len(value)} entries but history_item_ids has {n}", row=row, field=field)
    if ratings is not None and len(ratings) != n:
        raise DataError(
            source, f"has {len(ratings)} entries but history_item_ids has {n}", row=row, field="history_ratings"
        )
    if n and (np.asarray(ids).min() < 1):
        raise DataError(source, f"history item ids must be >= 1, got {list(ids)}", row=row, field="history_item_ids")
    if n and not np.isin(np.asarray(labels), (0, 1)).all():
        raise DataError(source, f"history labels must be 0 or 1, got {list(labels)}", row=row, field="history_labels")


def validate_samples(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check a frame against the canonical schema; return it with canonical dtypes.

    Raises DataError naming `source`, the row and the field of the first problem.
    """
    require_columns(frame, SAMPLE_COLUMNS, source)
    for field in ("user_id", "target_item_id"):
        check_positive_ids(frame[field], source, field)
    check_binary(frame["label"], source, "label")
    timestamps = pd.to_numeric(frame["timestamp"], errors="coerce")
    if timestamps.isna().any():
        row = first_bad_row(timestamps.isna().to_numpy())
        raise DataError(
            source, f"must be Unix seconds, got {plain(frame['timestamp'].iloc[row])!r}", row=row, field="timestamp"
        )
    for row, values in enumerate(zip(*(frame[c] for c in (*_LIST_COLUMNS, "history_ratings")), strict=True)):
        _check_history(row, *values, source=source)
    out = frame.loc[:, list(SAMPLE_COLUMNS)].copy()
    out["user_id"] = out["user_id"].astype("int64")
    out["target_item_id"] = out["target_item_id"].astype("int64")
    out["label"] = out["label"].astype("int8")
    out["timestamp"] = timestamps.astype("int64")
    return out.reset_index(drop=True)
