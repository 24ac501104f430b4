"""Checks on a table of per-user vectors, shared by the CTR input and the feature store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.errors import DataError


def checked_vectors(vectors: pd.DataFrame, dim: int, source: str) -> np.ndarray:
    """(len(vectors), dim) float32; names the row of a missing column, a wrong size, NaN or a repeated user."""
    for column in ("user_id", "embedding"):
        if column not in vectors.columns:
            raise DataError(source, f"missing column '{column}'", field=column)
    matrix = np.zeros((len(vectors), dim), dtype=np.float32)
    seen = set()
    for row, (user, vector) in enumerate(zip(vectors["user_id"], vectors["embedding"], strict=True)):
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (dim,):
            raise DataError(source, f"vector has size {vector.size}, expected {dim}", row=row, field="embedding")
        if not np.isfinite(vector).all():
            raise DataError(source, "vector holds NaN or infinite values", row=row, field="embedding")
        if user in seen:
            raise DataError(source, f"duplicate user_id {user}", row=row, field="user_id")
        seen.add(user)
        matrix[row] = vector
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
