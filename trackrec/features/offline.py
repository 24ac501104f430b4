"""The offline parquet of a version, on a local path or s3:// (s3fs), written so no reader sees half a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_file


def _storage(path: str, endpoint: str | None) -> dict | None:
    if not path.startswith("s3://"):
        return None
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def write_parquet(frame: pd.DataFrame, path: str, endpoint: str | None = None) -> str:
    """Returns the path written. An S3 PUT appears whole; a local file is renamed into place."""
    if path.startswith("s3://"):
        frame.to_parquet(path, storage_options=_storage(path, endpoint), index=False)
        return path
    local = Path(path).resolve()
    with atomic_file(local) as tmp:
        frame.to_parquet(tmp, index=False)
    return str(local)


def read_parquet(path: str, endpoint: str | None = None) -> pd.DataFrame:
    return pd.read_parquet(path, storage_options=_storage(path, endpoint))
