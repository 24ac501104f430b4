"""Stage select_samples: the users and samples the LLM loop reads.

train: one train-split sample per drawn user (the latest, so the history is longest);
eval: one test-split sample per user not drawn for train (held-out users);
distill: the latest train sample of `distill_fraction` of the train users (the teacher's prompts).
Samples with an empty history are skipped: there is nothing to summarise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.data.dataset import Dataset
from trackrec.errors import DataError
from trackrec.llm.config import SubsetConfig
from trackrec.timing import work_begins


def _latest_per_user(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[frame.history_titles.map(len) > 0]
    return frame.sort_values(["user_id", "timestamp"], kind="stable").groupby("user_id").tail(1)


def _draw(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    chosen = rng.choice(len(frame), size=min(count, len(frame)), replace=False)
    return frame.iloc[np.sort(chosen)]


def select_samples(dataset_dir: str | Path, config: SubsetConfig, output: str | Path) -> dict[str, int]:
    work_begins()
    dataset = Dataset.load(dataset_dir)
    rng = np.random.default_rng(config.seed)
    train_pool = _latest_per_user(dataset.samples["train"])
    if train_pool.empty:
        raise DataError(str(dataset_dir), "no train sample has a history to summarise")
    train = _draw(train_pool, config.train_samples, rng)
    test_pool = _latest_per_user(dataset.samples["test"])
    held_out = _draw(test_pool[~test_pool.user_id.isin(train.user_id)], config.eval_samples, rng)
    if held_out.empty:
        raise DataError(str(dataset_dir), "no test sample of a held-out user; lower subset.train_samples")
    n_distill = round(config.distill_fraction * train_pool.user_id.nunique())
    distill = _draw(train_pool, n_distill, rng)
    splits = {"train": train, "eval": held_out, "distill": distill}
    with atomic_dir(output) as tmp:
        for name, frame in splits.items():
            frame.to_parquet(tmp / f"{name}.parquet")
    return {name: len(frame) for name, frame in splits.items()}
