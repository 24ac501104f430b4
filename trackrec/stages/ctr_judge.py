"""Stage ctr_judge: the judge section's CTR backbone trained with G(t)'s greedy RecCoTs as the users'
vectors.

Its test AUC is the loop report's CTR curve (the paper's Figure 5, second curve). Under
`llm.reward: ctr` it is DPO4Rec's reward model: round t+1 scores G(t)'s sampled RecCoTs with it
(`judge_rewards`). Its vectors are point-in-time snapshots (`user_reccots`): a sample reads its user's
newest snapshot from before it, or zeros, as in train_ctr.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.config import config_from_dict, config_to_dict
from trackrec.ctr.features import rows_to_batch
from trackrec.ctr.saved import load_trained, trained_metrics
from trackrec.ctr.train import predict
from trackrec.data.dataset import Dataset
from trackrec.features.encoder import EncoderConfig, TextEncoder
from trackrec.llm.reward import reward
from trackrec.run_config import JudgeConfig
from trackrec.stages.encode import encode, vector_size
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import read_samples
from trackrec.stages.outputs import Judge
from trackrec.stages.train_ctr import EVAL_BATCH, train_ctr


def user_reccots(samples: str | Path, greedy: str | Path, iteration: int) -> pd.DataFrame:
    """user_id, as_of, reccot, iteration (encode's input): one snapshot per selected train sample, its
    greedy RecCoT as of its time (it summarises the events before it), read by that user's later
    samples only. The held-out users' samples are test-period ones: they give no snapshot, so no
    test-period text reaches a feature the judge is tested on."""
    frame = read_samples(samples, "train")
    table = pd.DataFrame(
        {
            "user_id": frame.user_id.to_numpy(np.int64),
            "as_of": frame.timestamp.to_numpy(np.int64),
            "reccot": read_reccots(greedy, "train", frame),
            "iteration": iteration,
        }
    )
    return table.drop_duplicates(["user_id", "as_of"], keep="last").sort_values(["user_id", "as_of"], kind="stable")


def ctr_judge(
    dataset: str | Path,
    samples: str | Path,
    greedy: str | Path,
    config: JudgeConfig,
    output: str | Path,
    iteration: int,
    progress: bool = True,
) -> dict:
    """Writes Judge (the RecCoTs it read, encode's vectors, train_ctr's model, its encoder); returns
    the test metrics."""
    return train_judge(dataset, user_reccots(samples, greedy, iteration), config, output, progress)


def train_judge(
    dataset: str | Path,
    reccots: pd.DataFrame,
    config: JudgeConfig,
    output: str | Path,
    progress: bool = True,
) -> dict:
    """The judge from any RecCoT table of RecCoTs.COLUMNS (one row per snapshot)."""
    with atomic_dir(output) as tmp:
        judge = Judge(tmp)
        judge.reccots.folder.mkdir()
        reccots.to_parquet(judge.reccots.table)
        encode(judge.reccots.folder, config.encoder, judge.vectors.folder, progress)
        vectors = dataclasses.replace(
            config.ctr, user_vectors=str(judge.vectors.table), dense_dim=vector_size(judge.vectors.folder)
        )
        result = train_ctr(dataset, vectors, judge.model, progress)
        judge.encoder.write_text(json.dumps(config_to_dict(config.encoder)))
    return result["test"]


def judge_auc(judge: str | Path) -> float:
    """The judge's test AUC (the report's CTR curve)."""
    return float(trained_metrics(Judge(judge).required("model"))["test"]["auc"])


def judge_rewards(
    judge: str | Path, dataset: str | Path, frame: pd.DataFrame, reccots: list[str], progress: bool = True
) -> np.ndarray:
    """DPO4Rec's reward of each row's RecCoT: the judge's probability of the row's label (p_click for
    a liked target, 1 - p_click for a disliked one) with the RecCoT's vector, encoded by the judge's
    own encoder, as the vector of the sample it was written for. frame: sample rows with their
    histories as lists."""
    model, trained = load_trained(Judge(judge).required("model"), Dataset.open(dataset))
    encoder = config_from_dict(EncoderConfig, json.loads(Judge(judge).required("encoder").read_text()), "judge encoder")
    vectors = TextEncoder(encoder).encode(list(reccots), progress)
    batches = []
    for start in range(0, len(frame), EVAL_BATCH):
        rows = frame.iloc[start : start + EVAL_BATCH]
        batches.append(rows_to_batch(rows, trained["history_len"], vectors[start : start + EVAL_BATCH]))
    p_click = predict(model, batches)[0].astype(np.float64)
    return reward(p_click, 1.0 - p_click, frame.label.to_numpy())
