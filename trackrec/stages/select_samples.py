"""Stage select_samples: the users and samples the LLM loop reads.

train: `train_samples` drawn from each user's latest `train_per_user` train-split samples (the
latest have the longest histories), half of them with a liked and half with a disliked target when
`balanced` (as many as there are of the rarer);
eval: the latest `eval_per_user` test-split samples of each of `eval_users` users: under `split:
users` users not drawn for train (held-out users), under `split: time` half of them train users (the
temporal split: their test samples come after everything V trained on) and half users never drawn
for train (the user-disjoint view beside it);
valid: the latest `eval_per_user` valid-split samples of the eval users (to choose settings on);
distill: the latest train sample of `distill_fraction` of the train users (the teacher's prompts);
align: the alignment samples of each round (iteration) t = 1..rounds, column `round`: round 1 is the
train samples, each later round a new balanced draw of as many users, disjoint from the earlier
rounds while the pool lasts (Algorithm 2 aligns on all samples; we redraw per iteration) and never
a held-out user;
items: the item table (the offline profile teacher reads genres and years).
Samples with an empty history are skipped: there is nothing to summarise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.data.dataset import Dataset
from trackrec.errors import DataError
from trackrec.llm.config import SubsetConfig
from trackrec.stages.outputs import Selected
from trackrec.timing import work_begins

POOL_COLUMNS = ["user_id", "target_item_id", "label", "timestamp", "history_start", "history_end"]


def _latest_per_user(frame: pd.DataFrame, count: int = 1) -> pd.DataFrame:
    """The latest `count` samples of each user with a history (samples come grouped by user in time
    order)."""
    return frame[frame.history_end > frame.history_start].groupby("user_id").tail(count)


def _draw(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    chosen = rng.choice(len(frame), size=min(count, len(frame)), replace=False)
    return frame.iloc[np.sort(chosen)]


def _draw_balanced(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    """count // 2 rows of each label, as many as the rarer label has where it runs short."""
    per_label = min(count // 2, *((frame.label == label).sum() for label in (0, 1)))
    if per_label == 0:
        return _draw(frame, count, rng)
    halves = [_draw(frame[frame.label == label], per_label, rng) for label in (0, 1)]
    return pd.concat(halves).sort_index()


def _alignment_rounds(
    pool: pd.DataFrame, train: pd.DataFrame, held_out: pd.DataFrame, config: SubsetConfig, rounds: int, rng
) -> pd.DataFrame:
    pool = pool[~pool.user_id.isin(held_out.user_id)]
    drawn, used = [train.assign(round=1)], set(train.user_id)
    for t in range(2, rounds + 1):
        fresh = pool[~pool.user_id.isin(used)]
        source = fresh if len(fresh) >= min(config.train_samples, len(pool)) else pool  # reuse once exhausted
        draw = (_draw_balanced if config.balanced else _draw)(source, config.train_samples, rng)
        drawn.append(draw.assign(round=t))
        used |= set(draw.user_id)
    return pd.concat(drawn)


def select_samples(dataset: str | Path, config: SubsetConfig, output: str | Path, rounds: int = 1) -> dict[str, int]:
    """Writes Selected from the prepared `dataset`; returns the samples of each split."""
    work_begins()
    source = dataset
    dataset = Dataset.open(source)
    rng = np.random.default_rng(config.seed)
    train_samples = dataset.samples("train", POOL_COLUMNS)
    latest = _latest_per_user(train_samples)
    if latest.empty:
        raise DataError(str(source), "no train sample has a history to summarise")
    train_pool = _latest_per_user(train_samples, config.train_per_user)
    train = (_draw_balanced if config.balanced else _draw)(train_pool, config.train_samples, rng)
    test_pool = _latest_per_user(dataset.samples("test", POOL_COLUMNS), config.eval_per_user)
    seen = test_pool.user_id.isin(train.user_id)
    unseen_users = rng.permutation(test_pool.user_id[~seen].unique())
    if config.split == "users":
        users = unseen_users[: config.eval_users]
    else:  # half train users judged later, half users never trained on (random draws rarely overlap)
        seen_users = rng.permutation(test_pool.user_id[seen].unique())[: config.eval_users // 2]
        users = np.concatenate([seen_users, unseen_users[: config.eval_users - len(seen_users)]])
    held_out = test_pool[test_pool.user_id.isin(users)].sort_index()
    if held_out.empty:
        raise DataError(str(source), "no test sample of a held-out user; lower subset.train_samples")
    valid = _latest_per_user(dataset.samples("valid", POOL_COLUMNS), config.eval_per_user)
    valid = valid[valid.user_id.isin(users)]
    n_distill = round(config.distill_fraction * latest.user_id.nunique())
    distill = _draw(latest, n_distill, rng)
    align = _alignment_rounds(train_pool, train, held_out, config, rounds, rng)
    splits = {"train": train, "eval": held_out, "valid": valid, "distill": distill, "align": align}
    with atomic_dir(output) as tmp:
        selected = Selected(tmp)
        for name, frame in splits.items():
            dataset.with_histories(frame).to_parquet(selected.split(name))
        dataset.items.to_parquet(selected.items)
        selected.source.write_text(json.dumps({"data_version": dataset.meta.get("data_version")}))
    return {name: len(frame) for name, frame in splits.items()}
