"""Paired bootstrap intervals over users: a user's samples share a history and a RecCoT, so they are
resampled together, and every score compared is resampled with the same draw."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score

RESAMPLES = 1000

Statistic = Callable[[np.ndarray], float]  # sample indices -> value


def bootstrap(statistic: Statistic, users: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """{estimate, ci_low, ci_high}: the statistic on every sample, and the 2.5 / 97.5 percentiles over
    `resamples` draws of the users with replacement (draws where it is undefined are skipped)."""
    rng = np.random.default_rng(seed)
    codes = np.unique(users, return_inverse=True)[1]
    members = [np.flatnonzero(codes == code) for code in range(codes.max() + 1)]
    draws = []
    for _ in range(resamples):
        index = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        value = statistic(index)
        if np.isfinite(value):
            draws.append(value)
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return {"estimate": float(statistic(np.arange(len(users)))), "ci_low": float(low), "ci_high": float(high)}


def auc_of(labels: np.ndarray, scores: np.ndarray) -> Statistic:
    def statistic(index: np.ndarray) -> float:
        return roc_auc_score(labels[index], scores[index]) if len(set(labels[index])) == 2 else np.nan

    return statistic


def auc_difference(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> Statistic:
    a, b = auc_of(labels, first), auc_of(labels, second)
    return lambda index: a(index) - b(index)


def mean_of(values: np.ndarray) -> Statistic:
    return lambda index: float(values[index].mean())


def like_rate(histories) -> np.ndarray:
    """Each sample's share of liked items in its history (0.5 for an empty one): the prior a
    validator must beat."""
    return np.array([float(np.mean(h)) if len(h) else 0.5 for h in histories])
