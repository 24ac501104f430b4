"""Stage score (Algorithm 1, second half): the reward of every sampled RecCoT, from V(t-1) (TrackRec)
or from the CTR judge trained on G(t-1)'s RecCoTs (DPO4Rec, `llm.reward: ctr`); the preferences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.llm.config import LLMConfig
from trackrec.llm.reward import preference, reward
from trackrec.stages.llm_common import alignment_samples, validator_probs, write_json
from trackrec.stages.shards import WHOLE, Shard

TIE = 1e-6  # rewards closer than this are equal
STATS = "stats.json"  # a scoring round's summary (`score_stats`)


def score(
    samples_dir: str | Path,
    sampled_dir: str | Path,
    validator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    progress=True,
    shard: Shard = WHOLE,
    judge: str | Path | None = None,
    dataset_dir: str | Path | None = None,
) -> dict:
    """Writes preferences.parquet (prompt, chosen, rejected, rewards) of samples with a preference,
    rewards.parquet (every sample's N rewards: what stats are computed from when shards are gathered)
    and stats.json. judge, dataset_dir: the CTR judge's folder and its dataset (`llm.reward: ctr`)."""
    if llm.reward == "ctr" and (judge is None or dataset_dir is None):
        raise ValueError("llm.reward ctr: the score stage needs the CTR judge and its dataset")
    sampled = pd.read_parquet(Path(sampled_dir) / "samples.parquet")
    iteration = int(sampled["round"].iloc[0]) if "round" in sampled and len(sampled) else 1
    frame = alignment_samples(samples_dir, iteration, shard)
    sampled = sampled.loc[frame.index]
    rewards = np.empty((0, llm.generation.samples))
    if not frame.empty:  # a shard may hold no user
        n = len(sampled.reccots.iloc[0])
        repeated = frame.loc[frame.index.repeat(n)]
        reccots = [r for row in sampled.reccots for r in row]
        if llm.reward == "ctr":
            from trackrec.stages.ctr_judge import judge_rewards  # torch and the encoder: not for gather's import

            flat = judge_rewards(judge, dataset_dir, repeated, reccots, progress)
        else:
            probs = validator_probs(llm, validator, repeated, reccots, "train samples", progress)
            flat = reward(probs[:, 0], probs[:, 1], repeated.label.to_numpy())
        rewards = flat.reshape(len(frame), n)
    spread = rewards.max(1) - rewards.min(1)
    # A sample whose N RecCoTs earn the same reward states no preference; argmax would pick one at
    # random and S-DPO would push down texts as good as the chosen one.
    informative = spread > TIE
    kept = sampled[informative]
    prefs = [
        preference(prompt, list(texts), list(r), llm.preference, list(done))
        for prompt, texts, r, done in zip(kept.prompt, kept.reccots, rewards[informative], kept.finished, strict=True)
    ]
    stats = score_stats(rewards, len(prefs))
    table = preference_table(prefs, rewards[informative], frame.index[informative])
    with atomic_dir(output) as tmp:
        table.to_parquet(tmp / "preferences.parquet")
        pd.DataFrame({"rewards": list(map(list, rewards))}, index=frame.index).to_parquet(tmp / "rewards.parquet")
        write_json(tmp / STATS, stats)
    return stats


CONTROLS = ("shuffled", "negated")


def control_preferences(
    scored_dir: str | Path, sampled_dir: str | Path, llm: LLMConfig, output: str | Path, control: str, seed: int = 0
) -> int:
    """A scoring round's preferences rebuilt as an alignment control, everything else (prompts, texts,
    counts) kept: `shuffled` permutes each sample's N rewards (which RecCoT is chosen becomes random);
    `negated` negates them (the worst is chosen: anti-alignment, whose reward must fall). Writes
    preferences.parquet; returns its rows."""
    if control not in CONTROLS:
        raise ValueError(f"control: one of {CONTROLS}, got {control!r}")
    rng = np.random.default_rng(seed)
    table = pd.read_parquet(Path(scored_dir) / "preferences.parquet")
    texts = pd.read_parquet(Path(sampled_dir) / "samples.parquet").loc[table.index]
    prefs = []
    for prompt, reccots, rewards, done in zip(table.prompt, texts.reccots, table.rewards, texts.finished, strict=True):
        rewards = rng.permutation(rewards) if control == "shuffled" else -np.asarray(rewards)
        prefs.append(preference(prompt, list(reccots), list(rewards), llm.preference, list(done)))
    with atomic_dir(output) as tmp:
        preference_table(prefs, table.rewards, table.index).to_parquet(tmp / "preferences.parquet")
    return len(prefs)


def preference_table(prefs: list, rewards, index: pd.Index) -> pd.DataFrame:
    """preferences.parquet's rows: what align reads (prompt, chosen, rejected, finish flags) and the
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


def scoring_stats(scored_dir: str | Path) -> dict:
    """What a scoring round wrote of itself (`score_stats`)."""
    return json.loads((Path(scored_dir) / STATS).read_text())


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
