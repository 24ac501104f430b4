"""Learning dynamics on a task whose right RecCoT is knowable: does S-DPO make G write it?

Every user is either a fan (likes 95% of films, in the history and the target alike) or not
(likes 5%). The right RecCoT is one word, "Positive" or "Negative": the teacher counts the
history's likes. V is Rec-tuned on users whose histories say nothing (half liked at random) with
the right word as summary, so it learns to read the summary and its reward judges G's word. G0
is distilled from a few users and then writes one word for everyone. One round of sample ->
score -> align against this fixed V must raise the reward of G's greedy RecCoT on held-out users.

The negative control is the bench's anti-aligned arm: the same round on the negated preferences
(`control_preferences(..., "negated")`: each sample's worst RecCoT chosen over the others). The
reward must fall instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.llm.conftest import save_tiny_lm
from tests.llm.teacher_server import TeacherServer
from trackrec.config import config_from_dict
from trackrec.llm.config import LLMConfig
from trackrec.llm.prompts import HistoryItem, rec_prompt, reccot_prompt
from trackrec.stages.align import align
from trackrec.stages.distill import distill, teach
from trackrec.stages.evaluate import evaluate
from trackrec.stages.greedy import greedy
from trackrec.stages.outputs import Greedy, Selected
from trackrec.stages.rectune import rectune
from trackrec.stages.sample import sample
from trackrec.stages.score import control_preferences, score

FAN = 0.95
WORDS = ("Positive", "Negative")


def users(rng: np.random.Generator, count: int, first_id: int, history_like: float | None = None) -> pd.DataFrame:
    """Odd ids are fans. history_like=None: histories follow the taste; else liked with that probability."""
    rows = []
    for uid in range(first_id, first_id + count):
        like = FAN if uid % 2 else 1 - FAN
        history = rng.random(8) < (like if history_like is None else history_like)
        rows.append(
            {
                "user_id": uid,
                "history_titles": [f"Film {rng.integers(1, 30)} (1990)" for _ in history],
                "history_labels": history.astype(int).tolist(),
                "history_ratings": None,
                "target_title": f"Film {rng.integers(1, 30)} (1990)",
                "label": int(rng.random() < like),
            }
        )
    return pd.DataFrame(rows, index=range(first_id, first_id + count))


def teacher_word(reccot_prompt_text: str) -> str:
    return WORDS[0] if reccot_prompt_text.count(", 1]") > reccot_prompt_text.count(", 0]") else WORDS[1]


def write_samples(folder, **splits: pd.DataFrame):
    folder.mkdir()
    for split, frame in splits.items():
        frame.to_parquet(Selected(folder).split(split))
    return folder


def tiny_base(folder, corpus: list[str]) -> None:
    """Each answer and RecCoT word is one token of the vocabulary."""
    save_tiny_lm(folder, corpus + ["Yes No", *WORDS] * 2000, vocab_size=800, hidden_size=64, logit_scale=8.0)


def corpus_of(*frames: pd.DataFrame) -> list[str]:
    texts = []
    for frame in frames:
        for row in frame.itertuples():
            items = [HistoryItem(t, label) for t, label in zip(row.history_titles, row.history_labels, strict=True)]
            texts += [reccot_prompt(items)] + [rec_prompt(items, row.target_title, word) for word in WORDS]
    return texts


def loop_config(tmp_path) -> LLMConfig:
    """One-token RecCoTs, strong learning rates: the task is small and must be learnt in seconds."""
    train = {"epochs": 1, "learning_rate": 3e-3, "batch_size": 4}
    raw = {
        "base": str(tmp_path / "base"),
        # V reads the history G summarised (the paper's scripts' setting): the task was designed on it
        "generation": {"history_tokens": 300, "validator_items": 50, "max_new_tokens": 1, "samples": 4, "top_p": 1.0},
        "distill_train": train | {"epochs": 4},
        "rectune_train": train | {"epochs": 20, "batch_size": 8},
        "align_train": train | {"epochs": 6},
        "beta": 0.5,
        "teacher": {"kind": "openai", "endpoint": "http://127.0.0.1:9/v1", "model": "t", "cache_dir": str(tmp_path)},
    }
    return config_from_dict(LLMConfig, raw)


@pytest.mark.parametrize("control", [None, "negated"], ids=["aligned", "anti-aligned"])
def test_alignment_raises_the_reward_of_the_greedy_reccot(tmp_path, control):
    rng = np.random.default_rng(0)
    validator_users = users(rng, 64, 0, history_like=0.5)
    aligned_users, held_out, distilled = users(rng, 64, 1000), users(rng, 64, 2000), users(rng, 16, 3000)
    tiny_base(tmp_path / "base", corpus_of(validator_users, aligned_users))
    llm = loop_config(tmp_path)
    # V: summaries carry the taste, histories do not
    v_samples = write_samples(tmp_path / "v-samples", train=validator_users)
    summaries = pd.DataFrame(
        {
            "split": "train",
            "sample": validator_users.index,
            "reccot": [WORDS[0] if uid % 2 else WORDS[1] for uid in validator_users.index],
        }
    )
    write_samples(tmp_path / "v-reccots")
    summaries.to_parquet(Greedy(tmp_path / "v-reccots").table)
    rectune(v_samples, tmp_path / "v-reccots", None, llm, tmp_path / "V")
    validator = tmp_path / "V"

    g_samples = write_samples(tmp_path / "g-samples", train=aligned_users, eval=held_out, distill=distilled)
    with TeacherServer(teacher_word) as server:
        llm.teacher.endpoint = server.url
        teach(g_samples, llm, tmp_path / "corpus", progress=False)
    distill(tmp_path / "corpus", llm, tmp_path / "G0")
    g0 = tmp_path / "G0"
    greedy(g_samples, g0, llm, tmp_path / "greedy0", progress=False)
    before = evaluate(g_samples, tmp_path / "greedy0", validator, llm, tmp_path / "eval0", progress=False)

    sample(g_samples, g0, llm, tmp_path / "sampled", seed=1, progress=False)
    stats = score(g_samples, tmp_path / "sampled", validator, llm, tmp_path / "scored", progress=False)
    preferences = tmp_path / "scored"
    if control is not None:
        preferences = tmp_path / "scored-negated"
        control_preferences(tmp_path / "scored", tmp_path / "sampled", llm, preferences, control)
    align(preferences, g0, llm, tmp_path / "G1")
    greedy(g_samples, tmp_path / "G1", llm, tmp_path / "greedy1", progress=False)
    after = evaluate(g_samples, tmp_path / "greedy1", validator, llm, tmp_path / "eval1", progress=False)

    assert stats["mean_chosen_reward"] > stats["mean_reward"] + 0.2  # V tells the N RecCoTs apart
    if control is None:
        assert after["mean_reward"] > before["mean_reward"] + 0.2, (before, after)
        assert after["auc"] > 0.8, after
        # G1's reward under a fixed V: judged by V while another adapter (G0's) is the evaluated V(t)
        other = evaluate(g_samples, tmp_path / "greedy1", g0, llm, tmp_path / "eval2", False, fixed_validator=validator)
        assert other["reward_fixed_v"] == pytest.approx(after["mean_reward"], abs=1e-6) == after["reward_fixed_v"]
        assert other["reward_fixed_v_low"] < other["reward_fixed_v"] < other["reward_fixed_v_high"]
        assert abs(other["mean_reward"] - other["reward_fixed_v"]) > 0.05  # so the two Vs did differ
    else:
        assert after["mean_reward"] < before["mean_reward"], (before, after)
