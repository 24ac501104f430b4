"""Gather the shards of a sharded stage into the one folder the next stage reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from trackrec.atomic import atomic_dir
from trackrec.errors import DataError
from trackrec.stages.llm_common import write_json
from trackrec.stages.score import STATS, score_stats
from trackrec.tables import concatenate
from trackrec.timing import work_begins


def _indexed(path: Path) -> bool:
    """Whether the table's rows carry a pandas index of their own (sample rows), not a RangeIndex."""
    metadata = pq.read_schema(path).pandas_metadata or {}
    return any(isinstance(column, str) for column in metadata.get("index_columns", []))


def merged_meta(metas: list[dict]) -> dict:
    """The shards' meta.json as one: what every shard says alike (the encoder, its dim), counts summed
    (the snapshots each encoded)."""
    merged = {}
    for key in metas[0]:
        values = [meta.get(key) for meta in metas]
        if all(v == values[0] for v in values):
            merged[key] = values[0]
        elif all(isinstance(v, int) for v in values):
            merged[key] = sum(values)
        else:
            raise DataError("gather", f"the shards disagree on {key!r} in meta.json: {values}")
    return merged


def gather(parts: list[str | Path], output: str | Path) -> dict[str, int]:
    """Concatenate each parquet table across `parts`: tables of sample rows (indexed) in index order,
    others (RecCoTs, embeddings) streamed in shard order; the shards' meta.json merged; a scoring
    round's stats.json recomputed from every shard's rewards. Returns the row count per table."""
    work_begins()
    parts = [Path(p) for p in parts]
    if not parts:
        raise DataError("gather", "no shard to gather")
    names = sorted({table.name for part in parts for table in part.glob("*.parquet")})
    missing = [f"{part}/{name}" for part in parts for name in names if not (part / name).is_file()]
    if missing:
        raise DataError(missing[0], "a shard lacks a table the others have; re-run that shard")
    counts = {}
    with atomic_dir(output) as tmp:
        for name in names:
            if not _indexed(parts[0] / name):
                counts[name] = concatenate([part / name for part in parts], tmp / name)
                continue
            tables = [t for t in (pd.read_parquet(part / name) for part in parts) if not t.empty]
            table = pd.concat(tables).sort_index(kind="stable") if tables else pd.read_parquet(parts[0] / name)
            table.to_parquet(tmp / name)
            counts[name] = len(table)
        if all((part / "meta.json").is_file() for part in parts):
            write_json(tmp / "meta.json", merged_meta([json.loads((p / "meta.json").read_text()) for p in parts]))
        if "rewards.parquet" in names:
            rewards = pd.read_parquet(tmp / "rewards.parquet").rewards
            write_json(tmp / STATS, score_stats(np.stack(rewards.to_list()), counts["preferences.parquet"]))
    return counts
