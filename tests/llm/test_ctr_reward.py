"""DPO4Rec's reward (`llm.reward: ctr`): the CTR judge trained on G's greedy RecCoTs scores each
sampled RecCoT by its probability of the sample's label."""

import numpy as np
import pandas as pd
import pytest
import torch

from trackrec.config import config_from_dict
from trackrec.ctr.config import CTRConfig, TrainConfig
from trackrec.ctr.features import batch_of
from trackrec.ctr.saved import load_trained, trained_metrics
from trackrec.data.dataset import Dataset
from trackrec.features.encoder import EncoderConfig, TextEncoder
from trackrec.llm.config import LLMConfig, SubsetConfig
from trackrec.run_config import JudgeConfig
from trackrec.stages.ctr_judge import ctr_judge, judge_auc, user_reccots
from trackrec.stages.outputs import Greedy, Judge, Sampled, Scored, Selected
from trackrec.stages.score import score
from trackrec.stages.select_samples import select_samples

CTR = CTRConfig(backbone="deepfm", train=TrainConfig(max_epochs=2, batch_size=64))
TEXTS = ["Loves Action and Comedy.", "Hates Horror, likes the 1990s.", "Picky: rates few films highly."]


@pytest.fixture
def judged(tmp_path, prepared):
    """Selected samples, a greedy RecCoT per sample (written by hand: the judge does not care who wrote
    them) and the judge trained on them."""
    samples = tmp_path / "samples"
    select_samples(prepared, SubsetConfig(train_samples=6, eval_users=4, eval_per_user=2), samples)
    rows = []
    for split in ("train", "eval"):
        frame = pd.read_parquet(Selected(samples).split(split))
        rows += [(split, index, f"User {user}, sample {index}: {TEXTS[index % 3]}") for index, user in
                 zip(frame.index, frame.user_id, strict=True)]  # fmt: skip
    greedy = tmp_path / "greedy"
    greedy.mkdir()
    pd.DataFrame(rows, columns=["split", "sample", "reccot"]).to_parquet(Greedy(greedy).table)
    metrics = ctr_judge(prepared, samples, greedy, JudgeConfig(ctr=CTR), tmp_path / "judge", 1, progress=False)
    return samples, greedy, tmp_path / "judge", metrics


def test_the_judge_reads_train_snapshots_only_so_held_out_users_get_no_test_period_text(judged, prepared):
    """Each selected train sample's RecCoT is a snapshot as of its time; the held-out users' samples
    are test-period ones and give none (before: each held-out user read the RecCoT of its latest test
    sample, whose history held the labels of the very test rows it was then the feature of)."""
    samples, greedy, judge, metrics = judged
    vectors = pd.read_parquet(Judge(judge).vectors.table)
    train = pd.read_parquet(Selected(samples).split("train"))
    held_out = pd.read_parquet(Selected(samples).split("eval"))
    assert sorted(vectors.user_id) == sorted(train.user_id) and not set(vectors.user_id) & set(held_out.user_id)
    test_start = Dataset.open(prepared).samples("test").timestamp.min()
    assert (vectors.as_of < test_start).all()
    for row in vectors.itertuples():
        sample = train[(train.user_id == row.user_id) & (train.timestamp == row.as_of)]
        assert row.reccot.startswith(f"User {row.user_id}, sample {sample.index[0]}:")  # its own sample's text
    assert judge_auc(judge) == metrics["auc"]
    written = trained_metrics(Judge(judge).model)
    assert written["config"]["dense_dim"] == 384 and user_reccots(samples, greedy, 1).iteration.eq(1).all()


def test_the_ctr_reward_is_the_judges_probability_of_the_label(tmp_path, judged, prepared):
    """Recomputed here from the dataset's own history rows (not the LLM rows' lists the stage reads):
    p_click for a liked target, 1 - p_click for a disliked one; DPO keeps the best and the worst."""
    samples, _, judge, _ = judged
    train = pd.read_parquet(Selected(samples).split("train"))
    assert set(train.label) == {0, 1}
    sampled = tmp_path / "sampled"
    sampled.mkdir()
    reccots = [[f"{text} ({index})" for text in TEXTS] for index in train.index]
    table = pd.DataFrame({"prompt": [f"p{i}" for i in train.index], "reccots": reccots,
                          "finished": [[True] * 3] * len(train)}, index=train.index)  # fmt: skip
    table.to_parquet(Sampled(sampled).table)
    raw = {"reward": "ctr", "preference": "dpo", "generation": {"samples": 3}}
    llm = config_from_dict(LLMConfig, raw)
    score(samples, sampled, None, llm, tmp_path / "scored", progress=False, judge=judge, dataset=prepared)
    rewards = np.stack(pd.read_parquet(Scored(tmp_path / "scored").rewards).loc[train.index].rewards)

    dataset = Dataset.open(prepared)
    model, trained = load_trained(Judge(judge).model, dataset)
    hist_items, hist_labels = dataset.history_matrix(train, trained["history_len"])
    vectors = TextEncoder(EncoderConfig()).encode([t for row in reccots for t in row], False).reshape(len(train), 3, -1)
    for k in range(3):
        batch = batch_of(train.user_id, train.target_item_id, train.label, hist_items, hist_labels)
        with torch.no_grad():
            p_click = torch.sigmoid(model(batch | {"dense": torch.from_numpy(vectors[:, k])})["logit"]).numpy()
        expected = np.where(train.label == 1, p_click, 1 - p_click)
        np.testing.assert_allclose(rewards[:, k], expected, rtol=1e-5)
    assert (rewards.max(1) - rewards.min(1) > 0).all()  # the RecCoT's vector moves the judge

    preferences = pd.read_parquet(Scored(tmp_path / "scored").preferences).loc[train.index]
    for row, texts, r in zip(preferences.itertuples(), reccots, rewards, strict=True):
        assert row.chosen == texts[int(r.argmax())] and list(row.rejected) == [texts[int(r.argmin())]]


def test_the_ctr_reward_without_a_judge_is_refused(tmp_path):
    llm = config_from_dict(LLMConfig, {"reward": "ctr"})
    with pytest.raises(ValueError, match="needs the CTR judge"):
        score(tmp_path, tmp_path, None, llm, tmp_path / "scored", progress=False)
