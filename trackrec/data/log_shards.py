"""A behaviour log prepared in user shards: prepare_data's fan-out, for a log larger than one pod.

The plan reads only the ids and times of the whole log, a batch at a time, and numbers users and
items as one pass over the log would (by first event time: trackrec/data/behaviour_log.py); it cuts
the dense user ids into contiguous ranges holding about equal numbers of events. A shard reads only
its users' events and prepares them as one pass would: a history never crosses users. Joined in
range order (`Dataset.joined`), the shards are the dataset one pass writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.data.behaviour_log import first_seen, numbered, scan_ids
from trackrec.data.dataset import load_id_maps, save_id_maps
from trackrec.errors import DataError

PLAN_FILE = "plan.json"
COMPACT_ROWS = 1 << 22  # per-batch id counts held before they are merged into one table


@dataclass(frozen=True)
class LogShard:
    """One shard's users (raw ids as text), the whole log's id maps and how many events the plan
    counted for those users (a shard that reads another number saw a log that changed)."""

    users: list[str]
    id_maps: dict[str, pd.DataFrame]
    events: int


@dataclass
class ShardPlan:
    """ranges: [low, high) dense user ids of each shard, in id order; none: one shard that prepares
    the whole source in one pass (a source that is not a parquet log). log: the identity of the log
    the plan read (trackrec/data/identity.py), which each shard checks again after its read: a log
    rewritten in place with as many events per shard passes the event counts."""

    ranges: list[tuple[int, int]] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    id_maps: dict[str, pd.DataFrame] = field(default_factory=dict)
    log: str = ""

    @property
    def count(self) -> int:
        return max(1, len(self.ranges))

    def shard(self, index: int) -> LogShard | None:
        """Shard `index`'s users; None where the plan is one pass over the whole source."""
        if not 0 <= index < self.count:
            raise DataError(PLAN_FILE, f"shard {index} is outside the plan's 0..{self.count - 1}")
        if not self.ranges:
            return None
        low, high = self.ranges[index]
        users = self.id_maps["user"]
        mine = users["raw_id"][(users["id"] >= low) & (users["id"] < high)]
        return LogShard(mine.tolist(), self.id_maps, self.events[index])

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_id_maps(self.id_maps, folder)
        (folder / PLAN_FILE).write_text(json.dumps({"ranges": self.ranges, "events": self.events, "log": self.log}))

    @classmethod
    def load(cls, folder: str | Path) -> ShardPlan:
        folder = Path(folder)
        if not (folder / PLAN_FILE).is_file():
            raise DataError(str(folder), f"not a shard plan (no {PLAN_FILE})")
        plan = json.loads((folder / PLAN_FILE).read_text())
        return cls([tuple(r) for r in plan["ranges"]], plan["events"], load_id_maps(folder), plan.get("log", ""))


class _Seen:
    """Each raw id's first event time and event count over a log read in batches: per-batch counts
    are merged once they outgrow the merged table, so the work stays linear in the log."""

    def __init__(self) -> None:
        self.merged: pd.DataFrame | None = None
        self.pending: list[pd.DataFrame] = []

    def add(self, raw: pd.Series, timestamps: np.ndarray) -> None:
        self.pending.append(first_seen(raw, timestamps)[1])
        held = sum(len(p) for p in self.pending)
        if held > max(COMPACT_ROWS, 0 if self.merged is None else len(self.merged)):
            self.merged = self.result()

    def result(self) -> pd.DataFrame:
        frames = ([] if self.merged is None else [self.merged]) + self.pending
        self.pending = []
        return pd.concat(frames).groupby(level=0, sort=False).agg({"first": "min", "events": "sum"})


def plan_log_shards(path: Path, shards: int, known: dict[str, pd.DataFrame]) -> ShardPlan:
    """The id maps of the whole log at `path` (`known` ids kept) and up to `shards` user ranges of
    about equal events, each holding at least one user of the log."""
    if shards < 1:
        raise DataError("prepare shards", f"the shard count must be >= 1, got {shards}")
    users, items = _Seen(), _Seen()
    for batch in scan_ids(path):
        stamps = batch["timestamp"].to_numpy(np.int64)
        users.add(batch["user_id"], stamps)
        items.add(batch["item_id"], stamps)
    user_seen = users.result()
    if user_seen.empty:
        raise DataError(str(path), "no events")
    user_map, user_ids = numbered(user_seen, known.get("user"))
    item_map, _ = numbered(items.result(), known.get("item"))
    order = np.argsort(user_ids)
    ids, events = user_ids[order], user_seen["events"].to_numpy(np.int64)[order]
    starts = _cuts(np.cumsum(events), min(shards, len(ids)))
    ends = [*starts[1:], len(ids)]
    ranges = [
        (int(ids[s]), int(ids[e]) if e < len(ids) else int(ids[-1]) + 1) for s, e in zip(starts, ends, strict=True)
    ]
    counts = [int(events[s:e].sum()) for s, e in zip(starts, ends, strict=True)]
    return ShardPlan(ranges, counts, {"user": user_map, "item": item_map})


def _cuts(cumulative: np.ndarray, count: int) -> list[int]:
    """The first user (index into id order) of each of `count` shards of about equal events; every
    shard gets at least one user."""
    total, starts = cumulative[-1], [0]
    for k in range(1, count):
        at = int(np.searchsorted(cumulative, total * k / count, side="right"))
        starts.append(min(max(at, starts[-1] + 1), len(cumulative) - (count - k)))
    return starts
