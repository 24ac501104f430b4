"""When a user's RecCoT is written, and which of the user's events it summarises.

A RecCoT is a snapshot (user, as_of): G's summary of the user's events at or before `as_of` (the
most recent `max_history` of them), known from `as_of` on, so it serves only samples strictly
after `as_of` (`AsOfIndex`). Snapshot times come from the config: every K days of the log, the
last second before each later split starts, and the log's latest event (now). A user gets a
snapshot at a time only where their history changed since their previous one, so an idle user costs
nothing, and nothing already summarised for an unchanged history is summarised again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trackrec.config import Config, field
from trackrec.data.history import user_starts
from trackrec.data.schema import SPLITS
from trackrec.errors import DataError

DAY = 86_400  # timestamps are Unix seconds (trackrec/data/schema.py)
PLAN_COLUMNS = ["user_id", "label", "timestamp", "history_start", "history_end"]


@dataclass
class SnapshotConfig(Config):
    every_days: int | None = field(
        30, help="a snapshot every K days from the log's first event (besides the split starts and now); none: "
        "only those. Smaller K: fresher RecCoTs for the CTR model's training samples, more G calls"
    )  # fmt: skip
    at_splits: bool = field(True, help="a snapshot just before each later split starts (what a split-time model knows)")

    def problems(self) -> list[str]:
        return self.at_least(1, "every_days") if self.every_days is not None else []


def snapshot_times(timestamps: pd.Series, splits: pd.Series, latest: int, config: SnapshotConfig) -> np.ndarray:
    """The sorted, distinct as_of times of a log (its samples' timestamps and splits): the grid, the
    split starts less a second, and `latest` (now: a snapshot of everything, the one served)."""
    times = [np.array([latest], np.int64)]
    if config.every_days is not None and len(timestamps):
        times.append(np.arange(int(timestamps.min()) + config.every_days * DAY, latest, config.every_days * DAY))
    if config.at_splits:
        for split in SPLITS[1:]:
            inside = timestamps[(splits == split).to_numpy()]
            if len(inside):
                times.append(np.array([int(inside.min()) - 1], np.int64))
    return np.unique(np.concatenate(times).astype(np.int64))


def plan_snapshots(samples: pd.DataFrame, times: np.ndarray, liked_only: bool, max_len: int) -> pd.DataFrame:
    """user_id, as_of, history_start, history_end: one row per snapshot of the users in `samples`
    (PLAN_COLUMNS, grouped by user in time order). A snapshot at T covers each event at or before T,
    so an event first counts in the snapshot at the first time >= its own. Its history rows are the
    user's history after its newest covered event: that event's own history plus the event (where
    the history shows it)."""
    if samples.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in ("user_id", "as_of", *PLAN_COLUMNS[3:])})
    users = samples["user_id"].to_numpy(np.int64)
    stamps = samples["timestamp"].to_numpy(np.int64)
    if stamps.max() > times[-1]:
        raise DataError("snapshots", f"an event at {stamps.max()} is after the last snapshot time {times[-1]}")
    cell = np.searchsorted(times, stamps, side="left")
    last = np.ones(len(users), bool)
    last[:-1] = (users[1:] != users[:-1]) | (cell[1:] != cell[:-1])
    first_row = samples["history_start"].to_numpy(np.int64)[user_starts(users, "snapshots")]
    shown = samples["label"].to_numpy(np.int64) == 1 if liked_only else np.ones(len(users), bool)
    end = samples["history_end"].to_numpy(np.int64) + shown
    plan = pd.DataFrame(
        {
            "user_id": users[last],
            "as_of": times[cell[last]],
            "history_start": np.maximum(first_row, end - max_len)[last],
            "history_end": end[last],
        }
    )
    plan = plan[plan.history_end > plan.history_start]  # nothing shown yet: no summary
    # liked-only histories: a time whose events were all dislikes shows what the previous one did
    return plan.drop_duplicates(["user_id", "history_end"]).reset_index(drop=True)


class AsOfIndex:
    """Snapshots (user, as_of) sorted once by a single int64 key, so each lookup is one binary search
    (the training stream looks up every row group of every epoch)."""

    def __init__(self, users: np.ndarray, as_of: np.ndarray):
        self.users, self.as_of = np.asarray(users, np.int64), np.asarray(as_of, np.int64)
        if len(self.users) == 0:
            return
        # times outside [first as_of - 1, last as_of + 1] are clipped there, which changes no answer
        self.low, self.high = int(self.as_of.min()) - 1, int(self.as_of.max()) + 1
        self.span = self.high - self.low + 1
        keys = self._key(self.users, self.as_of)
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def _key(self, users: np.ndarray, times: np.ndarray) -> np.ndarray:
        if int(users.max()) + 1 > np.iinfo(np.int64).max // self.span:
            raise DataError("snapshots", "user ids times the time span overflow the as-of join's int64 key")
        return users * self.span + (np.clip(times, self.low, self.high) - self.low)

    def rows(self, users: np.ndarray, times: np.ndarray, ttl_s: int | None = None) -> np.ndarray:
        """For each (user, time): the index of that user's newest snapshot with as_of strictly before
        the time (and, with a TTL, no older than `ttl_s` seconds), or -1 where there is none. Feast's
        point-in-time join on the same rows gives the same answer (tests/features/test_point_in_time.py)."""
        users, times = np.asarray(users, np.int64), np.asarray(times, np.int64)
        if len(self.users) == 0 or len(users) == 0:
            return np.full(len(users), -1, np.int64)
        found = np.searchsorted(self.keys, self._key(users, times), side="left") - 1
        index = self.order[np.maximum(found, 0)]
        hit = (found >= 0) & (self.users[index] == users)
        if ttl_s is not None:
            hit &= times - self.as_of[index] <= ttl_s
        return np.where(hit, index, -1)


@dataclass(frozen=True)
class SnapshotVectors:
    """Checked snapshot vectors: users[i]'s vector as of as_of[i] is matrix[i]; none is read once
    older than `ttl_s` seconds (the store's TTL; None: never)."""

    users: np.ndarray
    as_of: np.ndarray
    matrix: np.ndarray
    ttl_s: int | None = None

    @functools.cached_property
    def index(self) -> AsOfIndex:
        return AsOfIndex(self.users, self.as_of)

    def rows_for(self, users: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Per sample (user, time), the row of the snapshot it may read (newest before it), else -1."""
        return self.index.rows(users, times, self.ttl_s)

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), dim) vectors; zeros where a row is -1 (no snapshot yet: as for a new user)."""
        out = self.matrix[np.maximum(rows, 0)]
        out[rows < 0] = 0.0
        return out

    def permuted(self, seed: int) -> SnapshotVectors:
        """The same vectors shuffled across the snapshots (so, almost always, to other users): the
        control that keeps every vector and the connector but not whose it is."""
        order = np.random.default_rng(seed).permutation(len(self.matrix))
        return SnapshotVectors(self.users, self.as_of, self.matrix[order], self.ttl_s)
