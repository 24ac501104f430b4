"""Stage summarize: one RecCoT per user from G(T), on the history as it stood at the training cut-off.

The features a CTR model reads must not know the test period: each user's history is taken from
their first sample after the train split (its history holds exactly the train-period events), or,
for a user with none, from their latest train sample. The recurring job refreshes only active users:
those with behaviour within the last K days of the log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.data.dataset import Dataset
from trackrec.llm.config import LLMConfig
from trackrec.stages.llm_common import open_engine, prompt_builder
from trackrec.stages.shards import WHOLE, Shard

CUTOFF_COLUMNS = ["user_id", "target_item_id", "label", "timestamp", "split", "history_start", "history_end"]


def cutoff_samples(dataset: Dataset, users: tuple[int, int] | None = None) -> pd.DataFrame:
    """One sample per user (of ids in `users`, every user: None) with a non-empty history at the
    training cut-off, indexed by user_id. Samples come grouped by user in time order."""
    frame = dataset.samples(columns=CUTOFF_COLUMNS, users=users)
    train = (frame["split"] == "train").to_numpy()
    first_later = frame[~train].groupby("user_id").head(1)
    latest_train = frame[train].groupby("user_id").tail(1)
    rows = pd.concat([first_later, latest_train[~latest_train.user_id.isin(first_later.user_id)]])
    rows = rows[rows.history_end > rows.history_start]
    return rows.set_index("user_id", drop=False).sort_index()


def active_users(dataset: Dataset, within_days: int, users: tuple[int, int] | None = None) -> pd.Index:
    """Users with a sample in the last `within_days` days before the log's latest event (for a live
    log, that is now)."""
    events = dataset.samples(columns=["user_id", "timestamp"], users=users)
    latest = dataset.meta["latest_timestamp"]
    start = latest - within_days * 86_400
    return pd.Index(events.user_id[events.timestamp >= start].unique())


def summarize(
    dataset_dir: str | Path,
    generator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    iteration: int,
    max_users: int | None = None,
    seed: int = 0,
    progress: bool = True,
    shard: Shard = WHOLE,
    active_within_days: int = 0,
) -> int:
    """Writes reccots.parquet: user_id, reccot, iteration (which G wrote it). A shard reads only its
    users' rows. `max_users` (a demo setting) draws from every user, the same draw in each shard, so
    each shard then reads every user's cut-off; `active_within_days` > 0 keeps only active users."""
    dataset = Dataset.open(dataset_dir)
    users = None if max_users is not None else shard.users(dataset.n_users)
    frame = cutoff_samples(dataset, users)
    if active_within_days > 0:
        frame = frame[frame.user_id.isin(active_users(dataset, active_within_days, users))]
    if max_users is not None and max_users < len(frame):
        drawn = np.random.default_rng(seed).choice(len(frame), size=max_users, replace=False)
        frame = frame.iloc[np.sort(drawn)]
    if max_users is not None:
        frame = frame[frame.user_id.between(*shard.users(dataset.n_users), inclusive="left")]
    reccots = []
    if not frame.empty:
        engine = open_engine(llm, generator, progress)
        rows = dataset.with_histories(frame)
        prompt = prompt_builder(llm, engine.tokenizer, "user histories").reccot(rows)
        reccots = engine.greedy(prompt, llm.generation.max_new_tokens)
    table = pd.DataFrame({"user_id": frame.user_id.to_numpy(), "reccot": reccots, "iteration": iteration})
    with atomic_dir(output) as tmp:
        table.to_parquet(tmp / "reccots.parquet")
    return len(table)
