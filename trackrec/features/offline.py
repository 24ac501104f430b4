"""The offline parquet of a version, on a local path or s3:// (s3fs), written so no reader sees half a
file, read and written a batch at a time so memory does not grow with the users."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trackrec.atomic import atomic_file

BATCH = 16_384  # rows read or written per step


def _s3(endpoint: str | None):
    import s3fs

    return s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint} if endpoint else {})


def located(path: str) -> str:
    """Where a file is: an s3:// key as it is, a local path made absolute (what a feature view names)."""
    return path if path.startswith("s3://") else str(Path(path).resolve())


@contextlib.contextmanager
def parquet_writer(path: str, endpoint: str | None = None) -> Iterator:
    """Yields write(frame): each frame becomes row groups of one parquet file, whose schema the first
    sets. The file appears whole or not at all: an S3 multipart upload is aborted on failure, a local
    file (at `located(path)`) is renamed into place."""
    state: dict = {}

    def writer_on(handle) -> Iterator:
        def write(frame: pd.DataFrame) -> None:
            table = pa.Table.from_pandas(frame, schema=state.get("schema"), preserve_index=False)
            if "writer" not in state:
                state["schema"] = table.schema
                state["writer"] = pq.ParquetWriter(handle, table.schema)
            state["writer"].write_table(table)

        return write

    if path.startswith("s3://"):
        handle = _s3(endpoint).open(path, "wb")
        try:
            yield writer_on(handle)
            if "writer" in state:
                state["writer"].close()
        except BaseException:
            handle.discard()  # no object: the multipart upload is aborted
            handle.closed = True  # else its finaliser flushes the discarded buffer
            raise
        handle.close()
        return
    with atomic_file(located(path)) as tmp, open(tmp, "wb") as handle:
        yield writer_on(handle)
        if "writer" in state:
            state["writer"].close()


@contextlib.contextmanager
def opened(path: str, endpoint: str | None = None) -> Iterator:
    """What pyarrow reads a parquet file from: an s3:// key opened through s3fs, a local path as it is."""
    if not path.startswith("s3://"):
        yield path
        return
    with _s3(endpoint).open(path, "rb") as file:
        yield file


def read_batches(path: str, endpoint: str | None = None, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The parquet file's rows, BATCH at a time."""
    with opened(path, endpoint) as source:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=BATCH, columns=columns):
            yield batch.to_pandas()


def read_column(path: str, column: str, endpoint: str | None = None) -> pd.Series:
    """One column of the file, whole (user ids: 8 bytes a user)."""
    parts = [frame[column] for frame in read_batches(path, endpoint, [column])]
    return pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype="int64")
