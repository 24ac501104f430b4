"""Adapter for CoLLM's processed MovieLens-1M splits (the gzip JSON-lines copies, never the pickles).

Each row: uid, iid, label, timestamp, title, his (earlier liked ids, starting with the pad 0),
his_title, not_cold, row_index. The full earlier sequence (liked and disliked) is rebuilt from the
three splits sorted by (uid, timestamp, split, row_index); keeping only liked items in that order
reproduces CoLLM's `his` row for row (tests/test_realdata.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.data.schema import SPLITS, check_binary, check_positive_ids, first_bad_row, require_columns
from trackrec.errors import DataError

COLLM_FOLDER = "collm-ml1m"
RAW_COLUMNS = ("uid", "iid", "label", "timestamp", "title", "his", "his_title")
_SPLIT_ORDER = {name: rank for rank, name in enumerate(SPLITS)}


def split_file(data_root: Path, split: str) -> Path:
    return Path(data_root) / COLLM_FOLDER / "jsonl" / f"{split}_ood2.jsonl.gz"


def read_split(path: Path) -> pd.DataFrame:
    """Read one CoLLM split and check every row; errors name the file, row (0-based) and field."""
    if not path.exists():
        raise DataError(str(path), "file not found (set TRACKREC_DATA_DIR or data.root to the shared data folder)")
    try:
        # convert_dates off: pandas would read a column named "timestamp" as datetimes, Unix seconds as
        # nanoseconds after the int64 cast; the schema wants the file's seconds
        frame = pd.read_json(path, lines=True, compression="infer", convert_dates=False)
    except ValueError as e:
        raise DataError(str(path), f"not valid JSON lines: {e}") from e
    source = str(path)
    require_columns(frame, RAW_COLUMNS, source)
    check_positive_ids(frame["uid"], source, "uid")
    check_positive_ids(frame["iid"], source, "iid")
    check_binary(frame["label"], source, "label")
    if frame["timestamp"].isna().any():
        raise DataError(
            source, "missing timestamp", row=first_bad_row(frame["timestamp"].isna().to_numpy()), field="timestamp"
        )
    for row, (his, titles) in enumerate(zip(frame["his"], frame["his_title"], strict=True)):
        if not isinstance(his, list) or not his or his[0] != 0:
            raise DataError(
                source, f"history must be a list starting with the pad 0, got {his!r}", row=row, field="his"
            )
        if not isinstance(titles, list) or len(titles) != len(his):
            raise DataError(
                source, f"must be a list as long as 'his' ({len(his)}), got {titles!r}", row=row, field="his_title"
            )
    if "row_index" not in frame.columns:
        frame["row_index"] = np.arange(len(frame))
    return frame


def read_collm(data_root: Path) -> dict[str, pd.DataFrame]:
    return {split: read_split(split_file(data_root, split)) for split in SPLITS}


def collm_events(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Concatenate the splits into one event log in CoLLM's order: (uid, timestamp, split, row)."""
    parts = []
    for split, frame in raw.items():
        parts.append(
            pd.DataFrame(
                {
                    "user_id": frame["uid"].astype("int64"),
                    "item_id": frame["iid"].astype("int64"),
                    "title": frame["title"].astype(str),
                    "label": frame["label"].astype("int8"),
                    "rating": np.nan,
                    "timestamp": frame["timestamp"].astype("int64"),
                    "split": split,
                    "_split_rank": _SPLIT_ORDER[split],
                    "_row": frame["row_index"].astype("int64"),
                }
            )
        )
    events = pd.concat(parts, ignore_index=True)
    events = events.sort_values(["user_id", "timestamp", "_split_rank", "_row"], kind="stable")
    return events.drop(columns=["_split_rank", "_row"]).reset_index(drop=True)


def collm_stats(raw: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Table 1's counts: rows per split; users and items as max id + 1 (padding id included)."""
    stats = {f"{split}_rows": len(frame) for split, frame in raw.items()}
    stats["users"] = int(max(frame["uid"].max() for frame in raw.values())) + 1
    stats["items"] = int(max(frame["iid"].max() for frame in raw.values())) + 1
    return stats
