"""Stage evaluate: V(t) as recommender on held-out users with G(t)'s greedy RecCoTs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trackrec.atomic import atomic_dir
from trackrec.ctr.metrics import ctr_metrics
from trackrec.errors import DataError
from trackrec.llm.adapters import load_tokenizer
from trackrec.llm.config import LLMConfig
from trackrec.llm.reward import reward
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import read_samples, validator_probs, write_json


def evaluate(
    samples_dir: str | Path,
    greedy_dir: str | Path,
    validator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    progress=True,
) -> dict:
    """Writes metrics.json: AUC, ACC, LogLoss of p_yes / (p_yes + p_no); mean reward; RecCoT length in tokens."""
    frame = read_samples(samples_dir, "eval")
    labels = frame.label.to_numpy()
    if len(set(labels)) < 2:
        raise DataError(
            str(samples_dir),
            f"all {len(frame)} eval samples have label {labels[0]}: AUC is undefined; raise eval_samples",
        )
    reccots = read_reccots(greedy_dir, "eval", frame)
    probs = validator_probs(llm, validator, frame, reccots, "eval samples", progress)
    tokenizer = load_tokenizer(llm.base)
    p_yes = probs[:, 0] / probs.sum(1)
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in reccots]
    metrics = {
        **ctr_metrics(labels, p_yes),
        "mean_reward": float(reward(probs[:, 0], probs[:, 1], labels).mean()),
        "reccot_tokens": float(np.mean(lengths)),
        "samples": len(frame),
    }
    with atomic_dir(output) as tmp:
        write_json(tmp / "metrics.json", metrics)
    return metrics
