"""The readout of an experiment from its exposure log, and the rule that decides it.

The unit is the user (the hash assigns users, not impressions): impressions, clicks and conversions
are summed per user and every rate is a ratio of per-user means, its interval by the delta method.
The statistics are tea-tasting's (RatioOfMeans: delta method, CUPED with a pre-period covariate;
SampleRatio: the sample-ratio-mismatch test); nothing here is a hand-written test.

The rule (docs/experiments.md), per treatment against the control, first match wins:
1. stop (sample ratio mismatch): the users' split differs from the shares, p < SRM_ALPHA; no lift is
   read, the assignment or the logging is broken;
2. stop (guardrail): the treatment's feature-miss rate (users served zeros) exceeds the control's
   by more than MAX_MISS_INCREASE, or its mean latency by more than MAX_LATENCY_INCREASE (relative),
   and the increase's interval lies above 0 (a difference the split alone can make does not stop it);
3. keep running: fewer than MIN_USERS users in an arm;
4. stop (CTR down / CVR down): the CTR lift's interval lies below 0, or the CVR's does;
5. ship: the CTR lift's interval lies above 0 (and CVR is not down);
6. keep running: otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import tea_tasting as tt

from trackrec.ctr.metrics import ctr_metrics
from trackrec.errors import DataError
from trackrec.experiments.assignment import Experiment

SRM_ALPHA = 0.001
MIN_USERS = 100
MAX_MISS_INCREASE = 0.02  # absolute share of impressions served zeros
MAX_LATENCY_INCREASE = 0.10  # relative
CONFIDENCE = 0.95


@dataclass
class Comparison:
    treatment: str
    srm_pvalue: float
    decision: str
    reason: str
    cuped: bool
    lifts: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> rel, low, high, pvalue


@dataclass
class Readout:
    experiment: str
    control: str
    arms: list[dict]
    comparisons: list[Comparison]

    @property
    def decision(self) -> str:
        """The experiment's decision: ship a treatment that ships, stop if any is stopped, else keep running."""
        decisions = [c.decision for c in self.comparisons]
        return "ship" if "ship" in decisions else "stop" if "stop" in decisions else "keep running"

    def to_dict(self) -> dict:
        return {**asdict(self), "decision": self.decision}


def per_user(log: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, user): sums of the exposure log, and the pre-period where logged."""
    log = log.assign(impressions=1, misses=log.get("feature_miss", 0))
    sums = {"impressions": "sum", "click": "sum", "misses": "sum"}
    if "conversion" in log:
        sums["conversion"] = "sum"
    if "latency_ms" in log:
        log = log.assign(latency_n=log.latency_ms.notna().astype(int), latency_ms=log.latency_ms.fillna(0))
        sums |= {"latency_ms": "sum", "latency_n": "sum"}
    for column in ("pre_clicks", "pre_impressions"):
        if column in log:
            sums[column] = "first"
    users = log.groupby(["arm", "user_id"], observed=True).agg(sums).reset_index()
    arms_per_user = users.groupby("user_id").arm.nunique()
    if (arms_per_user > 1).any():
        user = int(arms_per_user.index[np.flatnonzero(arms_per_user.to_numpy() > 1)[0]])
        raise DataError("exposures", f"user {user} appears in more than one arm: the assignment is broken", field="arm")
    return users.rename(columns={"click": "clicks", "conversion": "conversions"})


def _arm_row(name: str, log: pd.DataFrame, users: pd.DataFrame) -> dict:
    row = {"arm": name, "users": len(users), "impressions": len(log), "clicks": int(log.click.sum())}
    row["ctr"] = row["clicks"] / max(row["impressions"], 1)
    row["feature_miss_rate"] = float(log.get("feature_miss", pd.Series(0, index=log.index)).mean())
    if "conversion" in log:
        row["conversions"] = int(log.conversion.sum())
        row["cvr"] = row["conversions"] / row["clicks"] if row["clicks"] else float("nan")
    if "latency_ms" in log and log.latency_ms.notna().any():
        row["latency_ms_mean"] = float(log.latency_ms.mean())
    if "p_click" in log and log.click.nunique() == 2:
        row |= {f"model_{k}": v for k, v in ctr_metrics(log.click.to_numpy(), log.p_click.to_numpy()).items()}
    clicked = log[log.click == 1]
    if "p_conversion" in log and "conversion" in log and clicked.conversion.nunique() == 2:
        cvr = ctr_metrics(clicked.conversion.to_numpy(), clicked.p_conversion.to_numpy())
        row |= {"model_cvr_auc": cvr["auc"], "model_cvr_logloss": cvr["logloss"]}
    return row


def _metrics(users: pd.DataFrame, ratio: float) -> tuple[dict, bool]:
    cuped = {"pre_clicks", "pre_impressions"} <= set(users.columns) and users.pre_impressions.gt(0).any()
    covariates = ("pre_clicks", "pre_impressions") if cuped else (None, None)
    metrics = {
        "ctr": tt.RatioOfMeans("clicks", "impressions", *covariates, confidence_level=CONFIDENCE),
        "srm": tt.SampleRatio(ratio),
    }
    if users.misses.sum() > 0:  # no miss anywhere: nothing to compare (and no variance to test)
        metrics["feature_miss_rate"] = tt.RatioOfMeans("misses", "impressions", confidence_level=CONFIDENCE)
    if "conversions" in users:
        metrics["cvr"] = tt.RatioOfMeans("conversions", "clicks", confidence_level=CONFIDENCE)
        metrics["ctcvr"] = tt.RatioOfMeans("conversions", "impressions", *covariates, confidence_level=CONFIDENCE)
    if "latency_n" in users and users.latency_n.sum() > 0:
        metrics["latency_ms"] = tt.RatioOfMeans("latency_ms", "latency_n", confidence_level=CONFIDENCE)
    return metrics, bool(cuped)


def _compare(experiment: Experiment, treatment: str, users: pd.DataFrame) -> Comparison:
    control = experiment.control
    pair = users[users.arm.isin([control.name, treatment])]
    if pair.arm.nunique() < 2:  # an arm with no user at all: the split failed outright
        return Comparison(treatment, 0.0, "stop", "sample ratio mismatch", False)
    metrics, cuped = _metrics(pair, experiment.arm(treatment).share / control.share)
    result = tt.Experiment(metrics, variant="arm").analyze(pair, control=control.name)
    found = {row["metric"]: row for row in result.to_dicts()}
    lifts = {
        name: {
            "control": row["control"],
            "treatment": row["treatment"],
            "effect": row["effect_size"],
            "effect_low": row["effect_size_ci_lower"],
            "effect_high": row["effect_size_ci_upper"],
            "rel": row["rel_effect_size"],
            "low": row["rel_effect_size_ci_lower"],
            "high": row["rel_effect_size_ci_upper"],
            "pvalue": row["pvalue"],
        }
        for name, row in found.items()
        if name != "srm"
    }
    srm = float(found["srm"]["pvalue"])
    decision, reason = decide(srm, lifts, pair.groupby("arm").size().min())
    if reason == "sample ratio mismatch":
        lifts = {}  # the readout stops: no lift is read from a broken split
    return Comparison(treatment, srm, decision, reason, cuped, lifts)


def decide(srm_pvalue: float, lifts: dict[str, dict[str, float]], fewest_users: int) -> tuple[str, str]:
    """(ship / keep running / stop, why) by the rule in the module docstring."""
    if srm_pvalue < SRM_ALPHA:
        return "stop", "sample ratio mismatch"
    miss = lifts.get("feature_miss_rate")
    if miss is not None and miss["effect"] > MAX_MISS_INCREASE and miss["effect_low"] > 0:
        return "stop", "guardrail: feature-miss rate"
    latency = lifts.get("latency_ms")
    if latency is not None and latency["rel"] > MAX_LATENCY_INCREASE and latency["low"] > 0:
        return "stop", "guardrail: latency"
    if fewest_users < MIN_USERS:
        return "keep running", f"fewer than {MIN_USERS} users in an arm"
    ctr, cvr = lifts["ctr"], lifts.get("cvr")
    if ctr["high"] < 0:
        return "stop", "CTR down"
    if cvr is not None and cvr["high"] < 0:
        return "stop", "CVR down"
    if ctr["low"] > 0:
        return "ship", "CTR up"
    return "keep running", "CTR lift's interval includes 0"


def readout(experiment: Experiment, log: pd.DataFrame) -> Readout:
    """Per arm rates and model quality; per treatment the lifts with intervals, SRM and the decision."""
    names = {a.name for a in experiment.arms}
    unknown = sorted(set(log.arm.unique()) - names)
    if unknown:
        raise DataError("exposures", f"arm(s) {unknown} are not in experiment {experiment.name!r}", field="arm")
    users = per_user(log)
    arms = [_arm_row(a.name, log[log.arm == a.name], users[users.arm == a.name]) for a in experiment.arms]
    comparisons = [_compare(experiment, a.name, users) for a in experiment.arms[1:]]
    return Readout(experiment.name, experiment.control.name, arms, comparisons)
