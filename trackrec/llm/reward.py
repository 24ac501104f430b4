"""Algorithm 1: the validator's normalised probability of the correct answer, and preference sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class PreferenceMode(StrEnum):
    SDPO = "sdpo"  # TrackRec: the best sample against all N-1 others
    DPO = "dpo"  # DPO4Rec: the best against the worst


def reward(p_yes: np.ndarray, p_no: np.ndarray, label: np.ndarray) -> np.ndarray:
    """r = p_yes / (p_yes + p_no) for label 1, p_no / (p_yes + p_no) for label 0."""
    p_yes, p_no, label = (np.asarray(a, dtype=np.float64) for a in (p_yes, p_no, label))
    total = p_yes + p_no
    if (total <= 0).any():
        raise ValueError("p_yes + p_no must be positive for every sample")
    return np.where(label == 1, p_yes, p_no) / total


@dataclass(frozen=True)
class Preference:
    prompt: str
    chosen: str
    rejected: tuple[str, ...]
    chosen_reward: float
    chosen_finished: bool = True  # False: cut at max_new_tokens, so no end-of-turn token is trained
    rejected_finished: tuple[bool, ...] = ()


def preference(
    prompt: str,
    samples: Sequence[str],
    rewards: Sequence[float],
    mode: PreferenceMode,
    finished: Sequence[bool] | None = None,
) -> Preference:
    """chosen = argmax reward (first on ties); rejected = the other N-1 (S-DPO) or the argmin (DPO)."""
    if len(samples) != len(rewards) or len(samples) < 2:
        raise ValueError(f"need at least 2 samples with one reward each, got {len(samples)} and {len(rewards)}")
    finished = [True] * len(samples) if finished is None else list(finished)
    best = int(np.argmax(rewards))
    if PreferenceMode(mode) is PreferenceMode.DPO:
        others = [int(np.argmin(rewards))]
    else:
        others = [i for i in range(len(samples)) if i != best]
    return Preference(
        prompt,
        samples[best],
        tuple(samples[i] for i in others),
        float(rewards[best]),
        finished[best],
        tuple(finished[i] for i in others),
    )
