"""Stage score (Algorithm 1, second half): the reward of every sampled RecCoT, from V(t-1) (TrackRec)
or from the CTR judge trained on G(t-1)'s RecCoTs (DPO4Rec, `llm.reward: ctr`); the preferences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from trackrec.atomic import atomic_dir
from trackrec.llm.config import LLMConfig
from trackrec.llm.reward import preference, reward
from trackrec.stages.llm_common import alignment_samples, validator_probs
from trackrec.stages.outputs import Sampled, Scored
from trackrec.stages.shards import WHOLE, Shard

TIE = 1e-6  # rewards closer than this are equal


def score(
    samples: str | Path,
    sampled: str | Path,
    validator: str | Path | None,
    llm: LLMConfig,
    output: str | Path,
    progress=True,
    shard: Shard = WHOLE,
    judge: str | Path | None = None,
    dataset: str | Path | None = None,
) -> dict:
    """Writes Scored: the preferences (prompt, chosen, rejected, rewards) of samples with one and
    every sample's N rewards, under V (`validator`, a rectune output) or (`llm.reward: ctr`) the CTR
    judge's folder with its dataset; returns the round's stats (`scoring_stats`)."""
    if llm.reward == "ctr" and (judge is None or dataset is None):
        raise ValueError("llm.reward ctr: the score stage needs the CTR judge and its dataset")
    drawn = pd.read_parquet(Sampled(sampled).required("table"))
    iteration = int(drawn["round"].iloc[0]) if "round" in drawn and len(drawn) else 1
    frame = alignment_samples(samples, iteration, shard)
    drawn = drawn.loc[frame.index]
    rewards = np.empty((0, llm.generation.samples))
    if not frame.empty:  # a shard may hold no user
        n = len(drawn.reccots.iloc[0])
        repeated = frame.loc[frame.index.repeat(n)]
        reccots = [r for row in drawn.reccots for r in row]
        if llm.reward == "ctr":
            from trackrec.stages.ctr_judge import judge_rewards  # torch and the encoder: not for gather's import

            flat = judge_rewards(judge, dataset, repeated, reccots, progress)
        else:
            probs = validator_probs(llm, validator, repeated, reccots, "train samples", progress)
            flat = reward(probs[:, 0], probs[:, 1], repeated.label.to_numpy())
        rewards = flat.reshape(len(frame), n)
    spread = rewards.max(1) - rewards.min(1)
    # A sample whose N RecCoTs earn the same reward states no preference; argmax would pick one at
    # random and S-DPO would push down texts as good as the chosen one.
    informative = spread > TIE
    kept = drawn[informative]
    prefs = [
        preference(prompt, list(texts), list(r), llm.preference, list(done))
        for prompt, texts, r, done in zip(kept.prompt, kept.reccots, rewards[informative], kept.finished, strict=True)
    ]
    table = preference_table(prefs, rewards[informative], frame.index[informative])
    with atomic_dir(output) as tmp:
        table.to_parquet(Scored(tmp).preferences)
        pd.DataFrame({"rewards": list(map(list, rewards))}, index=frame.index).to_parquet(Scored(tmp).rewards)
    return score_stats(rewards, len(prefs))


CONTROLS = ("shuffled", "negated")


def control_preferences(
    scored: str | Path, sampled: str | Path, llm: LLMConfig, output: str | Path, control: str, seed: int = 0
) -> int:
    """A scoring round's preferences rebuilt as an alignment control, everything else (prompts, texts,
    counts) kept: `shuffled` permutes each sample's N rewards (which RecCoT is chosen becomes random);
    `negated` negates them (the worst is chosen: anti-alignment, whose reward must fall). Writes
    Scored's preferences; returns their rows."""
    if control not in CONTROLS:
        raise ValueError(f"control: one of {CONTROLS}, got {control!r}")
    rng = np.random.default_rng(seed)
    table = pd.read_parquet(Scored(scored).required("preferences"))
    texts = pd.read_parquet(Sampled(sampled).required("table")).loc[table.index]
    prefs = []
    for prompt, reccots, rewards, done in zip(table.prompt, texts.reccots, table.rewards, texts.finished, strict=True):
        rewards = rng.permutation(rewards) if control == "shuffled" else -np.asarray(rewards)
        prefs.append(preference(prompt, list(reccots), list(rewards), llm.preference, list(done)))
    with atomic_dir(output) as tmp:
        preference_table(prefs, table.rewards, table.index).to_parquet(Scored(tmp).preferences)
    return len(prefs)


def preference_table(prefs: list, rewards, index: pd.Index) -> pd.DataFrame:
    """Scored preferences' rows: what align reads (prompt, chosen, rejected, finish flags) and the
    N rewards each preference came from."""
    return pd.DataFrame(
        {
            "prompt": [p.prompt for p in prefs],
            "chosen": [p.chosen for p in prefs],
            "rejected": [list(p.rejected) for p in prefs],
            "chosen_finished": [p.chosen_finished for p in prefs],
            "rejected_finished": [list(p.rejected_finished) for p in prefs],
            "rewards": [list(map(float, r)) for r in rewards],
        },
        index=index,
    )


def scoring_stats(scored: str | Path) -> dict:
    """A scoring round's stats (`score_stats`), from what it wrote (one shard's or the gathered
    shards': computed from every sample's rewards, they equal the unsharded round's)."""
    rewards = pd.read_parquet(Scored(scored).required("rewards")).rewards
    preferences = pq.read_metadata(Scored(scored).required("preferences")).num_rows
    table = np.stack(rewards.to_list()) if len(rewards) else np.empty((0, 1))  # a shard may hold no user
    return score_stats(table, preferences)


def score_stats(rewards: np.ndarray, preferences: int) -> dict:
    """rewards: (samples, N). What the loop report shows of one scoring round (means are None for
    an empty shard)."""
    spread = rewards.max(1) - rewards.min(1)

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if values.size else None

    return {
        "mean_reward": mean(rewards),
        "mean_chosen_reward": mean(rewards.max(1)),
        "mean_reward_spread": mean(spread),
        "preferences": preferences,
        "dropped_ties": int((spread <= TIE).sum()),
    }
