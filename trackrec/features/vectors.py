"""Tables of RecCoT vectors, one row per snapshot (user_id, as_of): their checks, shared by the CTR
input and the feature store, and the snapshots a CTR model's samples read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.data.schema import SECONDS_RANGE, plain
from trackrec.data.snapshots import DAY, SnapshotVectors
from trackrec.errors import DataError

KEYS = ("user_id", "as_of")  # a snapshot: one user's summary as of a time


def _require(found, source: str) -> None:
    for column in (*KEYS, "embedding"):
        if column not in found:
            raise DataError(source, f"missing column '{column}'", field=column)


def checked_as_of(values: pd.Series, source: str, first_row: int = 0) -> np.ndarray:
    """A snapshot table's as_of as int64 Unix seconds; names the first row that is missing, not a
    whole number, or outside 1970-2200 (another unit: milliseconds, a datetime's nanoseconds)."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataError(source, f"must be Unix seconds (integers), got a column of {values.dtype}", field="as_of")
    numbers = values.to_numpy(np.float64, na_value=np.nan)
    low, high = SECONDS_RANGE
    bad = ~((numbers >= low) & (numbers < high) & (numbers == np.floor(numbers)))  # NaN fails every test
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        got = plain(values.iloc[row])
        raise DataError(
            source, f"must be Unix seconds between 1970 and 2200, got {got!r}", row=first_row + row, field="as_of"
        )
    return numbers.astype(np.int64)


def checked_vectors(vectors: pd.DataFrame, dim: int, source: str, first_row: int = 0) -> np.ndarray:
    """(len(vectors), dim) float32; names the row of a missing column, a wrong size, NaN or a repeated
    snapshot (counted from `first_row`: the table's first row in a file read in chunks)."""
    _require(vectors.columns, source)
    column = vectors["embedding"]
    sizes = np.fromiter((np.size(v) if v is not None else 0 for v in column), dtype=np.int64, count=len(column))
    flat = np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in column if v is not None] or [[]])
    return _checked(vectors[list(KEYS)], sizes, flat, dim, source, first_row)


def read_vectors(
    path: str | Path, dim: int, n_users: int | None = None, ttl_days: int | None = None, endpoint: str | None = None
) -> SnapshotVectors:
    """The snapshot vectors of a parquet of user_id, as_of and embedding (a local file, or an s3://
    key at `endpoint`), checked as checked_vectors does (and, given n_users, every user inside the
    dataset), read as Arrow arrays: no Python object per vector, no other column; none is read once
    older than `ttl_days` (the store's TTL)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from trackrec.features.offline import opened

    source = str(path)
    with opened(source, endpoint) as file:
        parquet = pq.ParquetFile(file)
        _require(parquet.schema_arrow.names, source)
        table = parquet.read(columns=[*KEYS, "embedding"])
    column = table["embedding"].combine_chunks() if table.num_rows else pa.array([], pa.list_(pa.float32()))
    sizes = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.float32)
    keys = table.select(list(KEYS)).to_pandas()
    matrix = _checked(keys, sizes, flat, dim, source)
    users = keys.user_id.to_numpy(np.int64)
    if n_users is not None:
        outside = ~((users > 0) & (users < n_users))
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise DataError(
                source, f"user_id {users[row]} is outside the dataset (1..{n_users - 1})", row=row, field="user_id"
            )
    ttl_s = None if ttl_days is None else ttl_days * DAY
    return SnapshotVectors(users, keys.as_of.to_numpy(np.int64), matrix, ttl_s)


def _checked(
    keys: pd.DataFrame, sizes: np.ndarray, flat: np.ndarray, dim: int, source: str, first_row: int = 0
) -> np.ndarray:
    wrong = sizes != dim
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise DataError(source, f"vector has size {sizes[row]}, expected {dim}", row=first_row + row, field="embedding")
    matrix = flat.reshape(len(keys), dim)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise DataError(source, "vector holds NaN or infinite values", row=first_row + int(bad[0]), field="embedding")
    checked_as_of(keys.as_of, source, first_row)
    repeated = keys.duplicated(list(KEYS)).to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        user, as_of = keys.user_id.iloc[row], keys.as_of.iloc[row]
        raise DataError(source, f"duplicate snapshot: user_id {user} as of {as_of}", row=first_row + row, field="as_of")
    return matrix
