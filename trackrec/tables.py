"""Parquet tables written in parts (one per shard) joined into one file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def concatenate(
    paths: list[Path], target: Path, change: Callable[[int, pa.Table], pa.Table] | None = None, **options
) -> int:
    """The tables at `paths` as one file, part after part, a row group at a time (memory stays
    bounded); `change(i, rows)` may rewrite part i's rows (a joined dataset's history offsets);
    `options` go to the writer. Returns the row count."""
    handles = [pq.ParquetFile(path) for path in paths]
    filled = [(i, h) for i, h in enumerate(handles) if h.metadata.num_rows] or [(0, handles[0])]
    schema = filled[0][1].schema_arrow.remove_metadata()  # each part's pandas index metadata differs
    with pq.ParquetWriter(target, schema, **options) as writer:
        for index, handle in filled:
            for group in range(handle.num_row_groups):
                rows = handle.read_row_group(group).replace_schema_metadata()
                writer.write_table(rows if change is None else change(index, rows))
    return sum(h.metadata.num_rows for h in handles)
