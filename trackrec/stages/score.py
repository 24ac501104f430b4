"""Stage score (Algorithm 1, second half): V(t-1)'s reward for every sampled RecCoT; the preferences."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.llm.reward import preference, reward
from trackrec.stages.llm_common import read_samples, validator_probs, write_json
from trackrec.stages.llm_config import LLMConfig

TIE = 1e-6  # rewards closer than this are equal


def score(
    samples_dir: str | Path,
    sampled_dir: str | Path,
    validator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    progress=True,
) -> dict:
    """Writes preferences.parquet (prompt, chosen, rejected, rewards) of samples with a preference; stats.json."""
    frame = read_samples(samples_dir, "train")
    sampled = pd.read_parquet(Path(sampled_dir) / "samples.parquet").loc[frame.index]
    n = len(sampled.reccots.iloc[0])
    repeated = frame.loc[frame.index.repeat(n)]
    reccots = [r for row in sampled.reccots for r in row]
    probs = validator_probs(llm, validator, repeated, reccots, "train samples", progress)
    rewards = reward(probs[:, 0], probs[:, 1], repeated.label.to_numpy()).reshape(len(frame), n)
    spread = rewards.max(1) - rewards.min(1)
    # A sample whose N RecCoTs earn the same reward states no preference; argmax would pick one at
    # random and S-DPO would push down texts as good as the chosen one.
    informative = spread > TIE
    kept = sampled[informative]
    prefs = [
        preference(prompt, list(texts), list(r), llm.preference, list(done))
        for prompt, texts, r, done in zip(kept.prompt, kept.reccots, rewards[informative], kept.finished, strict=True)
    ]
    stats = {
        "mean_reward": float(rewards.mean()),
        "mean_chosen_reward": float(rewards.max(1).mean()),
        "mean_reward_spread": float(spread.mean()),
        "preferences": len(prefs),
        "dropped_ties": int((~informative).sum()),
    }
    table = pd.DataFrame(
        {
            "prompt": [p.prompt for p in prefs],
            "chosen": [p.chosen for p in prefs],
            "rejected": [list(p.rejected) for p in prefs],
            "chosen_finished": [p.chosen_finished for p in prefs],
            "rejected_finished": [list(p.rejected_finished) for p in prefs],
            "rewards": [list(map(float, r)) for r in rewards[informative]],
        },
        index=frame.index[informative],
    )
    with atomic_dir(output) as tmp:
        table.to_parquet(tmp / "preferences.parquet")
        write_json(tmp / "stats.json", stats)
    return stats
