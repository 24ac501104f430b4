"""E0/E1: V as a recommender with the summary as its only view of the long past.

V reads its short window (the `validator_items` latest items) beside a summary; the arms differ only
in the summary: the teacher's of the long history G reads, the teacher's of V's own window (the same
information, more computation), none, the long one dealt to another user (the vector's form without
its user), and the answer stated (the channel's polarity). Priors on the same samples: the like-rate
of V's window, of the long history, and both in a logistic regression fitted on V's train rows (the
user-side ceiling). A capacity ladder (LoRA on the top 6 layers, on all layers, every weight) on
the two key arms, each capacity's learning rate chosen on the valid split only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from quality.work import Work
from trackrec.intervals import auc_difference, auc_of, bootstrap
from trackrec.llm.config import LLMConfig
from trackrec.llm.profile_teacher import ProfileTeacher
from trackrec.llm.records import PromptBuilder
from trackrec.stages.distill import teacher_reccots
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import validator_probs
from trackrec.stages.outputs import Selected
from trackrec.stages.rectune import rectune

ANSWER = {1: "The user will like the target movie.", 0: "The user will not like the target movie."}
ARMS = ("teacher_long", "teacher_short", "empty", "permuted", "answer")
CAPACITIES = ("top6", "all", "full")
READS_ITS_SUMMARY = 0.9  # the answer arm's AUC at least: else V cannot tell a summary's content apart


def window_rate(frame: pd.DataFrame, items: int) -> np.ndarray:
    """The like-rate of each sample's `items` latest history items (V's window)."""
    return np.array([np.mean(labels[-items:]) if len(labels) else 0.5 for labels in frame.history_labels])


def long_rate(builder: PromptBuilder, frame: pd.DataFrame) -> np.ndarray:
    """The like-rate of the history G's prompt keeps (the long history)."""
    return np.array([np.mean([item.label for item in kept]) for kept, _ in builder.kept_histories(frame)])


def priors(builder: PromptBuilder, items: int, train: pd.DataFrame, held_out: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each prior's score of the held-out samples; `both` is fitted on the train rows."""

    def features(frame):
        return np.column_stack([window_rate(frame, items), long_rate(builder, frame)])

    both = LogisticRegression().fit(features(train), train.label.to_numpy())
    return {
        "prior_window": window_rate(held_out, items),
        "prior_long": long_rate(builder, held_out),
        "prior_both": both.predict_proba(features(held_out))[:, 1],
    }


def permuted(texts: list[str], users: np.ndarray, seed: int) -> list[str]:
    """The texts dealt to other rows: a row that drew its own user's text swaps with a neighbour."""
    order = np.random.default_rng(seed).permutation(len(texts))
    for i in range(len(order)):
        if users[order[i]] == users[i]:
            j = (i + 1) % len(order)
            order[i], order[j] = order[j], order[i]
    return [texts[k] for k in order]


def arm_texts(work: Work, llm: LLMConfig, builder: PromptBuilder, samples: Path, frames: dict) -> dict[str, Path]:
    """A greedy-shaped folder of each arm's summaries for every split."""
    teacher = ProfileTeacher(pd.read_parquet(Selected(samples).items))
    items = llm.generation.validator_items

    def short(split, frame):
        windows = [(kept[-items:], ids[-items:]) for kept, ids in builder.kept_histories(frame)]
        return teacher.complete_histories(windows)

    long = work.texts("texts-teacher_long", frames, lambda s, f: teacher_reccots(llm, builder, f, samples))

    def dealt(split, frame):
        return permuted(read_reccots(long, split, frame), frame.user_id.to_numpy(), seed=1)

    return {
        "teacher_long": long,
        "teacher_short": work.texts("texts-teacher_short", frames, short),
        "empty": work.texts("texts-empty", frames, lambda s, f: [""] * len(f)),
        "permuted": work.texts("texts-permuted", frames, dealt),
        "answer": work.texts("texts-answer", frames, lambda s, f: [ANSWER[int(y)] for y in f.label]),
    }


def capacity_config(llm: LLMConfig, capacity: str, learning_rate: float, layers: int, seed: int = 0) -> LLMConfig:
    """V's Rec-tuning at one rung of the ladder."""
    lora = dataclasses.replace(llm.lora, layers=list(range(layers - 6, layers)) if capacity == "top6" else None)
    train = dataclasses.replace(
        llm.rectune_train, learning_rate=learning_rate, full_finetune=capacity == "full", seed=seed
    )
    return dataclasses.replace(llm, lora=lora, rectune_train=train)


class Validators:
    """V (a rectune output) trained per (arm, capacity, learning rate) on the train split; its
    normalised P(Yes) per split, cached in its folder."""

    def __init__(self, work: Work, llm: LLMConfig, samples: Path, frames: dict, texts: dict, layers: int):
        self.work, self.llm, self.samples, self.frames = work, llm, samples, frames
        self.texts, self.layers = texts, layers

    def train(self, arm: str, capacity: str, learning_rate: float, samples: Path | None = None, tag: str = "") -> Path:
        llm = capacity_config(self.llm, capacity, learning_rate, self.layers)
        name = f"v-{arm}-{capacity}-lr{learning_rate:g}{tag}"
        folder = samples or self.samples
        return self.work.step(name, lambda out: rectune(folder, self.texts[arm], None, llm, out))

    def p_yes(self, validator: Path, arm: str, split: str, texts: Path | None = None) -> np.ndarray:
        texts = texts or self.texts[arm]
        cache = validator / f"p_yes-{split}-{texts.name}.npy"
        if not cache.exists():
            frame = self.frames[split]
            probs = validator_probs(self.llm, validator, frame, read_reccots(texts, split, frame), split)
            np.save(cache, probs[:, 0] / probs.sum(1))
        return np.load(cache)

    def chosen(self, arm: str, capacity: str, rates: tuple[float, ...]) -> tuple[float, Path, dict]:
        """The learning rate whose V has the best valid AUC, that V, and every rate's valid AUC."""
        labels = self.frames["valid"].label.to_numpy()
        valid = {}
        for rate in rates:
            validator = self.train(arm, capacity, rate)
            valid[rate] = auc_of(labels, self.p_yes(validator, arm, "valid"))(np.arange(len(labels)))
        best = max(valid, key=lambda r: np.nan_to_num(valid[r], nan=-1.0))  # NaN: one class in valid
        return best, self.train(arm, capacity, best), valid


def validator_experiments(validators: Validators, builder: PromptBuilder, learning_rates: dict, train_users) -> dict:
    """E0 (the arms and the ladder, against the priors) and E1 (a summary's signal), on the held-out
    samples, with the user-disjoint view (held-out users V never trained on) beside the temporal one."""
    held_out = validators.frames["eval"]
    labels, users = held_out.label.to_numpy(), held_out.user_id.to_numpy()
    scores = priors(builder, validators.llm.generation.validator_items, validators.frames["train"], held_out)
    choices, ladder = {}, {}
    for capacity in CAPACITIES:
        rate, long_v, valid = validators.chosen("teacher_long", capacity, learning_rates[capacity])
        choices[capacity] = {"learning_rate": rate, "valid_auc": {f"{r:g}": a for r, a in valid.items()}}
        ladder[capacity] = {"teacher_long": validators.p_yes(long_v, "teacher_long", "eval")}
        arms = ARMS[1:] if capacity == "top6" else ("teacher_short",)
        for arm in arms:
            ladder[capacity][arm] = validators.p_yes(validators.train(arm, capacity, rate), arm, "eval")
    best_capacity = max(choices, key=lambda c: choices[c]["valid_auc"][f"{choices[c]['learning_rate']:g}"])
    best_prior = max(scores, key=lambda name: auc_of(labels, scores[name])(np.arange(len(labels))))
    disjoint = ~np.isin(users, np.asarray(list(train_users)))
    rows = {}
    for view, keep in (("", np.ones(len(labels), bool)), ("users_disjoint.", disjoint)):
        y, u = labels[keep], users[keep]
        for name, s in scores.items():
            rows[f"{view}auc_{name}"] = bootstrap(auc_of(y, s[keep]), u)
        for capacity, arms in ladder.items():
            for arm, s in arms.items():
                rows[f"{view}auc_{arm}.{capacity}"] = bootstrap(auc_of(y, s[keep]), u)
            rows[f"{view}teacher_long_minus_short.{capacity}"] = bootstrap(
                auc_difference(y, arms["teacher_long"][keep], arms["teacher_short"][keep]), u
            )
        top6 = ladder["top6"]
        for control in ("empty", "permuted"):
            rows[f"{view}teacher_long_minus_{control}.top6"] = bootstrap(
                auc_difference(y, top6["teacher_long"][keep], top6[control][keep]), u
            )
        rows[f"{view}v_minus_best_prior"] = bootstrap(
            auc_difference(y, ladder[best_capacity]["teacher_long"][keep], scores[best_prior][keep]), u
        )
    return {
        "rows": rows,
        "choices": choices | {"best_capacity": best_capacity, "best_prior": best_prior},
        "disjoint_samples": int(disjoint.sum()),
        "verdicts": verdicts(rows),
    }


def verdicts(rows: dict) -> dict[str, str]:
    """What the key results say, in words, and whether the run can say it at all."""
    answer = rows["auc_answer.top6"]["estimate"]
    if answer < READS_ITS_SUMMARY:
        reads = (
            f"no: V reads even a stated answer at AUC {answer:.3f} (< {READS_ITS_SUMMARY}): "
            "too little training to judge the arms"
        )
    else:
        reads = f"yes: the stated answer gives AUC {answer:.3f}"

    def sign(name: str) -> str:
        value = rows[name]
        if value["ci_low"] > 0:
            return f"above 0: {value['estimate']:+.3f} [{value['ci_low']:+.3f}, {value['ci_high']:+.3f}]"
        if value["ci_high"] < 0:
            return f"below 0: {value['estimate']:+.3f} [{value['ci_low']:+.3f}, {value['ci_high']:+.3f}]"
        return f"not told from 0: {value['estimate']:+.3f} [{value['ci_low']:+.3f}, {value['ci_high']:+.3f}]"

    return {
        "V reads its summary": reads,
        "teacher_long_minus_short (top6)": sign("teacher_long_minus_short.top6"),
        "teacher_long_minus_permuted (top6)": sign("teacher_long_minus_permuted.top6"),
        "v_minus_best_prior": sign("v_minus_best_prior"),
    }
