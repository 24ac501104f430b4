"""Stage summarize: G(T)'s RecCoT snapshots, each a summary of one user's history as of a time.

A snapshot (user, as_of) summarises the user's events at or before as_of (trackrec/data/snapshots.py)
and is what a CTR model reads for that user's samples after as_of, in training (a point-in-time
join) and in serving (the newest). The times come from the config (every K days, the split starts,
now); a user gets one only where their history changed. The recurring refresh summarises active
users (behaviour within the last K days) as of now, and the publish keeps their older snapshots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.data.dataset import Dataset
from trackrec.data.snapshots import DAY, PLAN_COLUMNS, SnapshotConfig, plan_snapshots, snapshot_times
from trackrec.llm.config import LLMConfig
from trackrec.stages.llm_common import open_engine, prompt_builder
from trackrec.stages.outputs import RecCoTs
from trackrec.stages.shards import WHOLE, Shard


def dataset_snapshots(
    dataset: Dataset, config: SnapshotConfig, users: tuple[int, int] | None = None, now_only: bool = False
) -> pd.DataFrame:
    """The snapshots of the users with ids in `users` (every user: None): user_id, as_of,
    history_start, history_end, sorted by user and time. now_only: only those as of the log's latest
    event (the refresh's)."""
    latest = int(dataset.meta["latest_timestamp"])
    if now_only:
        times = np.array([latest])
    else:  # the times are the whole log's, the same in every shard
        every = dataset.samples(columns=["timestamp", "split"])
        times = snapshot_times(every.timestamp, every.split, latest, config)
    data = dataset.meta.get("config", {})
    return plan_snapshots(
        dataset.samples(columns=PLAN_COLUMNS, users=users),
        times,
        liked_only=data.get("history") == "liked",
        max_len=int(data.get("max_history", 50)),
    )


def active_users(dataset: Dataset, within_days: int, users: tuple[int, int] | None = None) -> pd.Index:
    """Users with a sample in the last `within_days` days before the log's latest event (for a live
    log, that is now)."""
    events = dataset.samples(columns=["user_id", "timestamp"], users=users)
    latest = dataset.meta["latest_timestamp"]
    start = latest - within_days * DAY
    return pd.Index(events.user_id[events.timestamp >= start].unique())


def summarize(
    dataset: str | Path,
    generator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    iteration: int,
    snapshots: SnapshotConfig,
    max_users: int | None = None,
    seed: int = 0,
    progress: bool = True,
    shard: Shard = WHOLE,
    active_within_days: int = 0,
) -> int:
    """Writes RecCoTs (by user and time) of the prepared `dataset`'s users by G (`generator`, a
    training stage's output) and returns its rows. A shard reads
    only its users' rows. `max_users` (a demo setting) draws from every user, the same draw in each
    shard; `active_within_days` > 0 is the refresh: only active users, one snapshot each, as of now."""
    dataset = Dataset.open(dataset)
    users = None if max_users is not None else shard.users(dataset.n_users)
    frame = dataset_snapshots(dataset, snapshots, users, now_only=active_within_days > 0)
    if active_within_days > 0:
        frame = frame[frame.user_id.isin(active_users(dataset, active_within_days, users))]
    if max_users is not None:
        ids = np.unique(frame.user_id.to_numpy())
        if max_users < len(ids):
            ids = np.sort(np.random.default_rng(seed).choice(ids, size=max_users, replace=False))
        low, high = shard.users(dataset.n_users)
        frame = frame[frame.user_id.isin(ids[(ids >= low) & (ids < high)])]
    frame = frame.reset_index(drop=True)
    reccots = []
    if not frame.empty:
        engine = open_engine(llm, generator, progress)
        rows = dataset.with_histories(frame)
        prompt = prompt_builder(llm, engine.tokenizer, "user histories").reccot(rows)
        reccots = engine.greedy(prompt, llm.generation.max_new_tokens)
    table = frame[["user_id", "as_of"]].assign(reccot=reccots, iteration=iteration)
    with atomic_dir(output) as tmp:
        table[list(RecCoTs.COLUMNS)].to_parquet(RecCoTs(tmp).table)
    return len(table)
