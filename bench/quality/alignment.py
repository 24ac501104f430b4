"""G0 and E2: does alignment move G, and was there room to gain?

G0 is distilled from the teacher long enough to learn its form (>= 100 optimiser steps). E2 keeps
the reward fixed (V, or DPO4Rec's CTR judge) to isolate G. Before aligning it measures the room
(best-of-N reward minus the greedy reward on the alignment prompts), the noise floor (one prompt
scored twice in other batch positions) and the held-out interval's half-width; it aligns only where
the room is at least 3x that half-width (the judge: also where two judges trained on other users
agree), and says so when not. Arms with equal compute: aligned, shuffled rewards, negated rewards
(anti-aligned), each over R rounds of on-policy resampling with G(t-1) as reference. Instruments:
the held-out reward under the reward model and under a second one trained on other users, KL(G_t||G0)
per token, the share of greedy RecCoTs that changed, trl's margins, the reward spread per sample.

The alignment prompts are valid-period samples of users neither V nor the judges trained on, so no
reward model scores its own training rows.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from quality.work import Profile, Work
from trackrec.data.dataset import Dataset
from trackrec.intervals import bootstrap, mean_of
from trackrec.llm.adapters import load_tokenizer
from trackrec.llm.config import LLMConfig
from trackrec.llm.reward import PreferenceMode, reward
from trackrec.stages.align import align
from trackrec.stages.ctr_judge import judge_auc, judge_rewards, train_judge, user_reccots
from trackrec.stages.distill import distill, teach
from trackrec.stages.greedy import greedy as greedy_stage
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import open_engine, prompt_builder, read_samples, validator_probs
from trackrec.stages.outputs import Corpus, Sampled, Scored, Selected, Trained
from trackrec.stages.sample import sample
from trackrec.stages.score import control_preferences, score, scoring_stats
from trackrec.stages.select_samples import POOL_COLUMNS

ARMS = ("aligned", "shuffled", "negated")
ROOM_FACTOR = 3.0  # align only where the room is this many held-out half-widths
AGREEMENT = 0.5  # the two judges' mean rank correlation over a sample's N RecCoTs, at least
MOVED_KL, MOVED_SHARE = 0.01, 0.1  # nats a token, share of greedy RecCoTs changed: G moved


def samples_with(samples: Path, folder: Path, **splits: pd.DataFrame) -> None:
    """A copy of the selected samples with `splits` replaced (an empty frame empties a split)."""
    shutil.copytree(samples, folder)
    for split, frame in splits.items():
        frame.to_parquet(Selected(folder).split(split))


def latest_rows(data: Path, split: str, exclude, count: int, per_user: int, seed: int) -> pd.DataFrame:
    """`count` users' latest `per_user` samples of `split` (users in `exclude` left out), with histories."""
    dataset = Dataset.open(data)
    frame = dataset.samples(split, POOL_COLUMNS)
    frame = frame[(frame.history_end > frame.history_start) & ~frame.user_id.isin(list(exclude))]
    users = np.random.default_rng(seed).permutation(frame.user_id.unique())[:count]
    frame = frame[frame.user_id.isin(users)].groupby("user_id").tail(per_user).sort_index()
    return dataset.with_histories(frame)


def generator_zero(work: Work, llm: LLMConfig, samples: Path, profile: Profile) -> tuple[Path, dict]:
    """G0 (distill's output) distilled on `distill_rows` teacher RecCoTs for >= 100 steps; its SFT
    loss curve and how the teacher's texts fit the RecCoT budget."""
    rows = read_samples(samples, "distill").sample(frac=1.0, random_state=0).head(profile.distill_rows)
    distill_samples = work.step("samples-distill", lambda out: samples_with(samples, out, distill=rows))
    corpus = work.step("teacher-corpus", lambda out: teach(distill_samples, llm, out))
    g0 = work.step("g0", lambda out: distill(corpus, llm, out))
    losses = [entry["loss"] for entry in json.loads(Trained(g0).log.read_text()) if "loss" in entry]
    tokenizer = load_tokenizer(llm.base)
    teacher_texts = pd.read_parquet(Corpus(corpus).table).reccot
    lengths = np.array([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in teacher_texts])
    return g0, {
        "steps": len(losses),
        "loss_first": float(np.mean(losses[:5])) if losses else None,
        "loss_last": float(np.mean(losses[-5:])) if losses else None,
        "losses": [float(x) for x in losses],
        "teacher_tokens_mean": float(lengths.mean()),
        "teacher_tokens_max": int(lengths.max()),
        "teacher_over_budget": float((lengths > llm.generation.max_new_tokens).mean()),
    }


class Alignment:
    """The alignment prompts (train split: greedy writes theirs; align: the rounds' rows) and the
    held-out samples (eval split) in one samples folder."""

    def __init__(self, work: Work, llm: LLMConfig, samples: Path, rows: pd.DataFrame, rounds: int):
        self.work, self.llm, self.rows = work, llm, rows
        held_out = read_samples(samples, "eval")
        rounds_frame = pd.concat([rows.assign(round=t) for t in range(1, rounds + 1)])
        self.samples = work.step(
            "samples-align", lambda out: samples_with(samples, out, train=rows, align=rounds_frame)
        )
        self.held_out = held_out

    def greedy(self, name: str, generator: Path) -> Path:
        return self.work.step(f"greedy-{name}", lambda out: greedy_stage(self.samples, generator, self.llm, out))

    def sampled(self, name: str, generator: Path, iteration: int) -> Path:
        seed = self.llm.generation.seed + iteration
        return self.work.step(
            f"sampled-{name}", lambda out: sample(self.samples, generator, self.llm, out, seed, iteration=iteration)
        )


class Reward:
    """A fixed reward model: V (TrackRec) or a CTR judge (DPO4Rec), scoring rows with RecCoTs."""

    def __init__(self, name: str, llm: LLMConfig, validator: Path | None = None, judge: Path | None = None, data=None):
        self.name, self.llm, self.validator, self.judge, self.data = name, llm, validator, judge, data

    def of(self, frame: pd.DataFrame, texts: list[str]) -> np.ndarray:
        if self.judge is not None:
            return judge_rewards(self.judge, self.data, frame, texts, False)
        probs = validator_probs(self.llm, self.validator, frame, texts, f"{self.name} rewards")
        return reward(probs[:, 0], probs[:, 1], frame.label.to_numpy())

    def score(self, alignment: Alignment, sampled: Path, out: Path) -> dict:
        judge = {} if self.judge is None else {"judge": self.judge, "dataset": self.data}
        return score(alignment.samples, sampled, self.validator, self.llm, out, **judge)


def gates(alignment: Alignment, g0: Path, rewards: Reward, tag: str) -> tuple[dict, Path, Path]:
    """The room, the reward spread, the noise floor and the held-out half-width, before any alignment."""
    work, rows = alignment.work, alignment.rows
    greedy0 = alignment.greedy("G0", g0)
    sampled = alignment.sampled("G0", g0, 1)
    scored = work.step(f"scored-G0-{tag}", lambda out: rewards.score(alignment, sampled, out))
    n_rewards = np.stack(pd.read_parquet(Scored(scored).rewards).rewards.to_numpy())
    texts = read_reccots(greedy0, "train", rows)
    greedy_reward = rewards.of(rows, texts)
    again = rewards.of(rows.iloc[::-1].copy(), texts[::-1])[::-1]  # other batch neighbours and positions
    held = alignment.held_out
    held_reward = rewards.of(held, read_reccots(greedy0, "eval", held))
    interval = bootstrap(mean_of(held_reward), held.user_id.to_numpy())
    half_width = (interval["ci_high"] - interval["ci_low"]) / 2
    room = float(n_rewards.max(1).mean() - greedy_reward.mean())
    values = {
        "room": room,
        "reward_spread": float((n_rewards.max(1) - n_rewards.min(1)).mean()),
        "noise_floor": float(np.abs(again - greedy_reward).max()),
        "held_out_half_width": float(half_width),
        "held_out_reward_G0": interval["estimate"],
        "room_over_half_width": room / half_width if half_width > 0 else float("inf"),
    }
    return values, scored, sampled


def aligned_arms(alignment: Alignment, g0: Path, rewards: Reward, rounds: int, tag: str, first: tuple[Path, Path]):
    """G_R of each arm (aligned, shuffled, negated): R rounds, each resampling from the arm's G(t-1),
    scored by the fixed reward, aligned with G(t-1) as reference; trl's log and the scoring stats."""
    work, llm = alignment.work, alignment.llm
    out = {}
    for arm in ARMS:
        generator, logs, spreads = g0, [], []
        for t in range(1, rounds + 1):
            name = f"{arm}-{tag}-t{t}"
            if t == 1:
                scored, sampled = first
            else:
                sampled = alignment.sampled(name, generator, t)
                scored = work.step(f"scored-{name}", lambda o, s=sampled: rewards.score(alignment, s, o))
            spreads.append(scoring_stats(scored)["mean_reward_spread"])
            preferences = scored
            if arm != "aligned":
                rebuild = lambda o, s=scored, p=sampled, a=arm, r=t: control_preferences(s, p, llm, o, a, r)  # noqa: E731
                preferences = work.step(f"preferences-{name}", rebuild)
            trained = work.step(f"g-{name}", lambda o, p=preferences, g=generator: align(p, g, llm, o))
            logs.append(json.loads(Trained(trained).log.read_text()))
            generator = trained
        out[arm] = {"generator": generator, "logs": logs, "spreads": spreads}
    return out


def kl_per_token(llm: LLMConfig, generator: Path, reference: Path, prompts: list[str], seed: int) -> float:
    """KL(G || reference) per token, estimated on two samples of G per held-out prompt."""
    engine = open_engine(llm, generator, progress=False)
    generation = llm.generation
    drawn = engine.sample(prompts, 2, generation.temperature, generation.top_p, generation.max_new_tokens, seed)
    repeated = [p for p, row in zip(prompts, drawn, strict=True) for _ in row]
    texts = [c.text for row in drawn for c in row]
    own, counts = engine.completion_logprobs(repeated, texts)
    other, _ = open_engine(llm, reference, progress=False).completion_logprobs(repeated, texts)
    return float((own - other).sum() / max(int(counts.sum()), 1))


def readouts(alignment: Alignment, g0: Path, arms: dict, judges: dict[str, Reward], tag: str) -> dict:
    """Per arm: held-out gain over G0 under each reward model, KL to G0, share changed, margins."""
    held = alignment.held_out
    users = held.user_id.to_numpy()
    g0_texts = read_reccots(alignment.greedy("G0", g0), "eval", held)
    base = {name: judge.of(held, g0_texts) for name, judge in judges.items()}
    prompts = prompt_builder(alignment.llm, load_tokenizer(alignment.llm.base), "held-out").reccot(held)
    rows = {}
    for arm, result in arms.items():
        texts = read_reccots(alignment.greedy(f"{arm}-{tag}", result["generator"]), "eval", held)
        for name, judge in judges.items():
            rows[f"{arm}.gain_under_{name}"] = bootstrap(mean_of(judge.of(held, texts) - base[name]), users)
        kl = kl_per_token(alignment.llm, result["generator"], g0, prompts, seed=7)
        changed = float(np.mean([a != b for a, b in zip(texts, g0_texts, strict=True)]))
        margins = [e["rewards/margins"] for e in result["logs"][-1] if "rewards/margins" in e]
        moved = kl >= MOVED_KL or changed >= MOVED_SHARE
        gained = rows[f"{arm}.gain_under_{next(iter(judges))}"]["ci_low"] > 0
        rows[f"{arm}.instruments"] = {
            "kl_per_token": kl,
            "share_changed": changed,
            "margin_first": margins[0] if margins else None,
            "margin_last": margins[-1] if margins else None,
            "reward_spread_per_round": result["spreads"],
            "verdict": "gained" if gained else ("moved, did not gain" if moved else "did not move"),
        }
    return rows


def validator_alignment(work, llm, samples, rows, g0, validator, second_validator, profile, force=False) -> dict:
    """E2 under V: gates, then (where they pass) the arms and their readouts under V and V'."""
    alignment = Alignment(work, llm, samples, rows, profile.rounds)
    v = Reward("V", llm, validator=validator)
    values, scored, sampled = gates(alignment, g0, v, "V")
    passed = values["room_over_half_width"] >= ROOM_FACTOR
    result = {"gates": values | {"passed": passed}}
    if not passed and not force:
        result["not_aligned"] = (
            f"room {values['room']:.4f} < {ROOM_FACTOR:g} x the held-out half-width {values['held_out_half_width']:.4f}"
        )
        return result
    arms = aligned_arms(alignment, g0, v, profile.rounds, "V", (scored, sampled))
    judges = {"V": v, "V_other_users": Reward("V'", llm, validator=second_validator())}
    return result | {"rows": readouts(alignment, g0, arms, judges, "V")}


def judge_alignment(work, config, llm, data, samples, rows, g0, profile, exclude, force=False) -> dict:
    """E2 under DPO4Rec's CTR judge (best vs worst DPO): two judges, each trained with several G0
    RecCoTs per user on its own users (neither the alignment users nor the other judge's); gates on
    their spread, the room and their agreement."""
    llm = dataclasses.replace(llm, reward="ctr", preference=PreferenceMode.DPO)
    judges, taken = {}, set(exclude)
    for seed in (0, 1):
        users_rows = latest_rows(data, "train", taken, profile.judge_users, profile.judge_per_user, seed=10 + seed)
        taken |= set(users_rows.user_id)
        judge_samples = work.step(
            f"samples-judge{seed}", lambda out, r=users_rows: samples_with(samples, out, train=r, eval=r.iloc[:0])
        )
        texts = work.step(f"greedy-judge{seed}", lambda out, s=judge_samples: greedy_stage(s, g0, llm, out))
        table = user_reccots(judge_samples, texts, 0)  # one snapshot per sample, as the loop's judge
        judges[seed] = work.step(f"judge{seed}", lambda out, t=table: train_judge(data, t, config.judge, out))
    first, second = (Reward(f"judge{s}", llm, judge=judges[s], data=data) for s in (0, 1))
    alignment = Alignment(work, llm, samples, rows, profile.rounds)
    values, scored, sampled = gates(alignment, g0, first, "judge")
    frame = alignment.rows
    texts = pd.read_parquet(Sampled(sampled).table).loc[frame.index].reccots
    n = len(texts.iloc[0])
    repeated = frame.loc[frame.index.repeat(n)]
    flat = [t for row in texts for t in row]
    a = first.of(repeated, flat).reshape(len(frame), n)
    b = second.of(repeated, flat).reshape(len(frame), n)
    rank = [stats.spearmanr(x, y).statistic for x, y in zip(a, b, strict=True) if np.ptp(x) > 0 and np.ptp(y) > 0]
    values |= {
        "judge_test_auc": [judge_auc(judges[0]), judge_auc(judges[1])],
        "judge_agreement": float(np.mean(rank)) if rank else 0.0,
        "same_best": float(np.mean(a.argmax(1) == b.argmax(1))),
    }
    passed = values["room_over_half_width"] >= ROOM_FACTOR and values["judge_agreement"] >= AGREEMENT
    result = {"gates": values | {"passed": passed}}
    if not passed and not force:
        result["not_aligned"] = (
            f"room {values['room']:.5f} vs {ROOM_FACTOR:g} x half-width {values['held_out_half_width']:.5f}; "
            f"judges' agreement {values['judge_agreement']:.2f} (needs {AGREEMENT})"
        )
        return result
    arms = aligned_arms(alignment, g0, first, profile.rounds, "judge", (scored, sampled))
    return result | {"rows": readouts(alignment, g0, arms, {"judge": first, "judge_other_users": second}, "judge")}
