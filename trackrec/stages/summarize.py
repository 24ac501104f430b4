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


def cutoff_histories(dataset: Dataset) -> pd.DataFrame:
    """One row per user with a non-empty history at the training cut-off, indexed by user_id."""
    later = pd.concat([dataset.samples["valid"], dataset.samples["test"]])
    first_later = later.sort_values(["user_id", "timestamp"], kind="stable").groupby("user_id").head(1)
    train = dataset.samples["train"].sort_values(["user_id", "timestamp"], kind="stable")
    latest_train = train.groupby("user_id").tail(1)
    rows = pd.concat([first_later, latest_train[~latest_train.user_id.isin(first_later.user_id)]])
    rows = rows[rows.history_titles.map(len) > 0]
    return rows.set_index("user_id", drop=False).sort_index()


def active_users(dataset: Dataset, within_days: int) -> pd.Index:
    """Users with a sample in the last `within_days` days before the log's latest event (for a live
    log, that is now)."""
    events = pd.concat(list(dataset.samples.values()))[["user_id", "timestamp"]]
    start = events.timestamp.max() - within_days * 86_400
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
    """Writes reccots.parquet: user_id, reccot, iteration (which G wrote it). `max_users` draws from
    every user (the same draw in each shard); `active_within_days` > 0 keeps only active users."""
    dataset = Dataset.load(dataset_dir)
    frame = cutoff_histories(dataset)
    if active_within_days > 0:
        frame = frame[frame.user_id.isin(active_users(dataset, active_within_days))]
    if max_users is not None and max_users < len(frame):
        drawn = np.random.default_rng(seed).choice(len(frame), size=max_users, replace=False)
        frame = frame.iloc[np.sort(drawn)]
    frame = shard.of(frame)
    reccots = []
    if not frame.empty:
        engine = open_engine(llm, generator, progress)
        prompt = prompt_builder(llm, engine.tokenizer, "user histories").reccot(frame)
        reccots = engine.greedy(prompt, llm.generation.max_new_tokens)
    table = pd.DataFrame({"user_id": frame.user_id.to_numpy(), "reccot": reccots, "iteration": iteration})
    with atomic_dir(output) as tmp:
        table.to_parquet(tmp / "reccots.parquet")
    return len(table)
