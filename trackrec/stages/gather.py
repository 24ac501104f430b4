"""Gather the shards of a sharded stage into the one folder the next stage reads."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from trackrec.atomic import atomic_dir
from trackrec.errors import DataError
from trackrec.qualified import resolve
from trackrec.stages.llm_common import write_json
from trackrec.stages.outputs import Output
from trackrec.tables import concatenate
from trackrec.timing import work_begins


def _indexed(path: Path) -> bool:
    """Whether the table's rows carry a pandas index of their own (sample rows), not a RangeIndex."""
    metadata = pq.read_schema(path).pandas_metadata or {}
    return any(isinstance(column, str) for column in metadata.get("index_columns", []))


def merged_summary(summaries: list[dict], name: str) -> dict:
    """The shards' summaries as one: what every shard says alike (the encoder, its dim), counts
    summed (the snapshots each encoded)."""
    merged = {}
    for key in summaries[0]:
        values = [summary.get(key) for summary in summaries]
        if all(v == values[0] for v in values):
            merged[key] = values[0]
        elif all(isinstance(v, int) for v in values):
            merged[key] = sum(values)
        else:
            raise DataError("gather", f"the shards disagree on {key!r} in {name}: {values}")
    return merged


def described_by(kind: str) -> type[Output]:
    """The Output class `module:name` (what a sharded stage declares it writes)."""
    described = resolve(kind, "output description")
    if not (isinstance(described, type) and issubclass(described, Output)):
        raise DataError("gather", f"{kind!r} is not an Output (trackrec.stages.outputs)")
    return described


def gather(parts: list[str | Path], kind: str, output: str | Path) -> dict[str, int]:
    """The shards of a sharded stage's output (`kind`: module:name of its Output) as one: each of
    its tables concatenated across `parts` (tables of sample rows, indexed, in index order; others,
    RecCoTs and embeddings, streamed in shard order), its summaries merged. Returns the row count
    per table."""
    work_begins()
    described = described_by(kind)
    shards = [described(p) for p in parts]
    if not shards:
        raise DataError("gather", "no shard to gather")
    files = [*described.tables.values(), *described.summaries.values()]
    missing = [shard.folder / name for shard in shards for name in files if not (shard.folder / name).is_file()]
    if missing:
        raise DataError(str(missing[0]), f"a shard lacks a file of its {described.__name__}; re-run that shard")
    counts = {}
    with atomic_dir(output) as tmp:
        for name in described.tables.values():
            sources = [shard.folder / name for shard in shards]
            if not _indexed(sources[0]):
                counts[name] = concatenate(sources, tmp / name)
                continue
            tables = [t for t in map(pd.read_parquet, sources) if not t.empty]
            table = pd.concat(tables).sort_index(kind="stable") if tables else pd.read_parquet(sources[0])
            table.to_parquet(tmp / name)
            counts[name] = len(table)
        for name in described.summaries.values():
            write_json(tmp / name, merged_summary([json.loads((s.folder / name).read_text()) for s in shards], name))
    return counts
