"""Stage evaluate: V(t) as recommender on held-out users with G(t)'s greedy RecCoTs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trackrec.atomic import atomic_dir
from trackrec.ctr.metrics import ctr_metrics
from trackrec.errors import DataError
from trackrec.intervals import auc_of, bootstrap, like_rate, mean_of
from trackrec.llm.adapters import load_tokenizer
from trackrec.llm.config import LLMConfig
from trackrec.llm.reward import reward
from trackrec.stages.ctr_judge import judge_auc
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import read_samples, validators_probs, write_json
from trackrec.stages.outputs import Evaluation, Report, Selected
from trackrec.stages.score import scoring_stats


def data_version_of(samples: str | Path) -> str | None:
    """The data version the Selected samples came from (the report names it)."""
    source = Selected(samples).source
    return json.loads(source.read_text()).get("data_version") if source.is_file() else None


def evaluate(
    samples: str | Path,
    greedy: str | Path,
    validator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    progress=True,
    fixed_validator: str | Path | None = None,
    judge: str | Path | None = None,
) -> dict:
    """V (`validator`, a rectune output) on the Selected `samples`' eval split with G(t)'s Greedy
    RecCoTs; writes the Evaluation: AUC (with a 95% bootstrap interval over users), ACC, LogLoss of
    p_yes / (p_yes + p_no); the like-rate prior's AUC on the same samples (what V must beat); mean
    reward; the mean reward of these RecCoTs under the fixed V0 (`fixed_validator`; none: `validator`
    is V0) with its interval, which moves only when G does; RecCoT length in tokens; the test AUC of
    the CTR judge trained with G(t)'s RecCoT vectors (`judge`, when given)."""
    frame = read_samples(samples, "eval")
    labels = frame.label.to_numpy()
    if len(set(labels)) < 2:
        raise DataError(
            str(samples),
            f"all {len(frame)} eval samples have label {labels[0]}: AUC is undefined; raise eval_users",
        )
    reccots = read_reccots(greedy, "eval", frame)
    validators = [validator] if fixed_validator is None else [validator, fixed_validator]
    scored = validators_probs(llm, validators, frame, reccots, "eval samples", progress)  # one load of the base
    probs, fixed = scored[0], scored[-1]  # without a fixed V0, V(t) is V0
    tokenizer = load_tokenizer(llm.base)
    p_yes = probs[:, 0] / probs.sum(1)
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in reccots]
    users = frame.user_id.to_numpy()
    interval = bootstrap(auc_of(labels, p_yes), users)
    under_v0 = bootstrap(mean_of(reward(fixed[:, 0], fixed[:, 1], labels)), users)
    metrics = {
        **ctr_metrics(labels, p_yes),
        "auc_low": interval["ci_low"],
        "auc_high": interval["ci_high"],
        "prior_auc": ctr_metrics(labels, like_rate(frame.history_labels))["auc"],
        "users": len(set(users)),
        "mean_reward": float(reward(probs[:, 0], probs[:, 1], labels).mean()),
        "reward_fixed_v": under_v0["estimate"],
        "reward_fixed_v_low": under_v0["ci_low"],
        "reward_fixed_v_high": under_v0["ci_high"],
        "reccot_tokens": float(np.mean(lengths)),
        "samples": len(frame),
        "data_version": data_version_of(samples),
        "ctr_auc": None if judge is None else judge_auc(judge),
    }
    with atomic_dir(output) as tmp:
        write_json(Evaluation(tmp).metrics, metrics)
    return metrics


def loop_rows(previous_report: str | Path | None, iteration: int, metrics: dict, scored: str | Path | None) -> list:
    """The loop report's rows so far: the previous evaluate task's rows plus this one (with the sampled
    rewards of its scoring round, when it had one)."""
    rows = [] if previous_report is None else json.loads(Report(previous_report).required("rows").read_text())
    row = {"iteration": iteration, **metrics}
    if scored is not None:
        stats = scoring_stats(scored)
        row |= {"sampled_mean_reward": stats["mean_reward"], "sampled_chosen_reward": stats["mean_chosen_reward"]}
    return rows + [row]
