"""Checks on a table of per-user vectors, shared by the CTR input and the feature store."""

from __future__ import annotations

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
