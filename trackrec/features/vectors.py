"""Checks on a table of per-user vectors, shared by the CTR input and the feature store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.errors import DataError


def checked_vectors(vectors: pd.DataFrame, dim: int, source: str, first_row: int = 0) -> np.ndarray:
    """(len(vectors), dim) float32; names the row of a missing column, a wrong size, NaN or a repeated
    user (counted from `first_row`: the table's first row in a file read in chunks)."""
    for column in ("user_id", "embedding"):
        if column not in vectors.columns:
            raise DataError(source, f"missing column '{column}'", field=column)
    column = vectors["embedding"]
    sizes = np.fromiter((np.size(v) if v is not None else 0 for v in column), dtype=np.int64, count=len(column))
    flat = np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in column if v is not None] or [[]])
    return _checked(vectors["user_id"].to_numpy(), sizes, flat, dim, source, first_row)


def read_vectors(path: str | Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, (n, dim) float32) from a parquet of user_id + embedding, checked as checked_vectors
    does, read as Arrow arrays: no Python object per vector, no other column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = str(path)
    found = pq.read_schema(path).names
    for column in ("user_id", "embedding"):
        if column not in found:
            raise DataError(source, f"missing column '{column}'", field=column)
    table = pq.read_table(path, columns=["user_id", "embedding"])
    column = table["embedding"].combine_chunks() if table.num_rows else pa.array([], pa.list_(pa.float32()))
    sizes = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.float32)
    ids = table["user_id"].to_numpy()
    return ids, _checked(ids, sizes, flat, dim, source)


def _checked(
    ids: np.ndarray, sizes: np.ndarray, flat: np.ndarray, dim: int, source: str, first_row: int = 0
) -> np.ndarray:
    wrong = sizes != dim
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise DataError(source, f"vector has size {sizes[row]}, expected {dim}", row=first_row + row, field="embedding")
    matrix = flat.reshape(len(ids), dim)
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise DataError(source, "vector holds NaN or infinite values", row=first_row + int(bad[0]), field="embedding")
    repeated = pd.Series(ids).duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise DataError(source, f"duplicate user_id {ids[row]}", row=first_row + row, field="user_id")
    return matrix


def random_unit_vectors(like: str | Path, output: str | Path, seed: int) -> Path:
    """A random unit vector per user of the table `like` (an embeddings.parquet), written to `output`:
    the control for a RecCoT vector (the connector's extra parameters without the information)."""
    table = pd.read_parquet(like)
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(table), len(table.embedding.iloc[0]))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # the same scale as the normalised encoder's
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    table.assign(embedding=list(vectors), reccot="").to_parquet(output)
    return Path(output)
