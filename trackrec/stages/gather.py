"""Gather the shards of a sharded stage into the one folder the next stage reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.errors import DataError
from trackrec.stages.llm_common import write_json
from trackrec.stages.score import score_stats
from trackrec.timing import work_begins


def gather(parts: list[str | Path], output: str | Path) -> dict[str, int]:
    """Concatenate each parquet table across `parts` (rows in index order); a scoring round's
    stats.json is recomputed from every shard's rewards. Returns the row count per table."""
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
            tables = [t for t in (pd.read_parquet(part / name) for part in parts) if not t.empty]
            table = pd.concat(tables).sort_index(kind="stable") if tables else pd.read_parquet(parts[0] / name)
            table.to_parquet(tmp / name)
            counts[name] = len(table)
        if "rewards.parquet" in names:
            rewards = pd.read_parquet(tmp / "rewards.parquet").rewards
            write_json(tmp / "stats.json", score_stats(np.stack(rewards.to_list()), counts["preferences.parquet"]))
    return counts
