"""An offline replay of an experiment: the logged impressions of a hold-out period, each user put in
their arm by the experiment's hash, each impression scored by that arm's model with that arm's
features as of the impression, the logged click and conversion kept.

What it measures: how well each arm's model predicts the outcomes that were logged (AUC, LogLoss on
its own exposures), and whether the assignment, the exposure log and the readout hold together. It
does not measure the causal effect of ranking with an arm: the outcomes were logged under whatever
ranked them then, so per-arm CTR and CVR differ only by which users the hash sent where.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.ctr.esmm import has_conversions, predict_tasks
from trackrec.ctr.saved import load_trained
from trackrec.ctr.stream import SplitStream
from trackrec.data.dataset import Dataset
from trackrec.data.schema import SPLITS
from trackrec.errors import DataError
from trackrec.experiments.assignment import ArmSpec, Experiment
from trackrec.features import definitions
from trackrec.features.vectors import read_vectors

BATCH = 4096


def replay(experiment: Experiment, dataset_dir: str | Path, store, split: str = "test") -> pd.DataFrame:
    """The exposure log (trackrec/experiments/exposures.py) of `split`'s impressions under `experiment`."""
    dataset = Dataset.open(dataset_dir)
    conversions = has_conversions(dataset)
    columns = ["user_id", "target_item_id", "label", "timestamp", *["conversion"] * conversions]
    samples = dataset.samples(split, columns=columns)
    if samples.empty:
        raise DataError(str(dataset_dir), f"no {split} impressions to replay", field="split")
    users = samples.user_id.unique()
    arm_of = pd.Series(experiment.arms_of(users), index=users)
    samples["arm"] = arm_of.reindex(samples.user_id).to_numpy()
    log = pd.DataFrame(
        {
            "impression_id": [f"{split}-{i}" for i in range(len(samples))],
            "user_id": samples.user_id.to_numpy(np.int64),
            "item_id": samples.target_item_id.to_numpy(np.int64),
            "arm": samples.arm.to_numpy(),
            "timestamp": samples.timestamp.to_numpy(np.int64),
            "click": samples.label.to_numpy(np.int8),
        }
    )
    if conversions:
        log["conversion"] = samples.conversion.to_numpy(np.int8)
    for column in ("feature_version", "model_version"):
        log[column] = ""
    log["p_click"], log["p_conversion"], log["feature_miss"] = np.nan, np.nan, 0
    for arm in experiment.arms:
        mine = (samples.arm == arm.name).to_numpy()
        scored, missed = _scored(arm, dataset, store, split, samples)
        log.loc[mine, "feature_version"], log.loc[mine, "model_version"] = arm.feature_version, arm.model
        log.loc[mine, "p_click"] = scored.p_click.to_numpy()[mine]
        log.loc[mine, "p_conversion"] = scored.p_conversion.to_numpy()[mine]
        log.loc[mine, "feature_miss"] = missed[mine].astype(np.int8)
    if log.p_conversion.isna().all():
        log = log.drop(columns="p_conversion")
    return log.join(_pre_period(dataset, split, log.user_id))


def _scored(arm: ArmSpec, dataset: Dataset, store, split: str, samples: pd.DataFrame):
    """(every `split` impression scored by the arm's model with its version's features, whether the
    impression's user had no vector then: a feature miss, served zeros)."""
    model, trained = load_trained(arm.model, dataset)
    vectors = None
    if trained["dense_dim"]:
        view = store.feast.get_feature_view(definitions.view_name(arm.feature_version))
        ttl = view.ttl.days if view.ttl and view.ttl.total_seconds() > 0 else None
        path, endpoint = view.batch_source.path, store.config.s3_endpoint  # a cluster's offline root: s3://
        vectors = read_vectors(path, trained["dense_dim"], dataset.n_users, ttl, endpoint)
    joint = trained.get("task", "ctr") == "esmm"
    stream = SplitStream(dataset, split, trained["history_len"], BATCH, vectors, conversions=joint)
    scored = predict_tasks(model, stream)
    if vectors is None:
        return scored, np.ones(len(samples), bool)  # a model without the vector reads none
    rows = vectors.rows_for(samples.user_id.to_numpy(np.int64), samples.timestamp.to_numpy(np.int64))
    return scored, rows < 0


def _pre_period(dataset: Dataset, split: str, users: pd.Series) -> pd.DataFrame:
    """Each impression's user's clicks and impressions before `split` (the CUPED covariate)."""
    before = dataset.samples(columns=["user_id", "label", "split"])
    before = before[before.split.isin(SPLITS[: SPLITS.index(split)]).to_numpy()]
    per_user = before.groupby("user_id").label.agg(pre_clicks="sum", pre_impressions="size")
    return per_user.reindex(users.to_numpy()).fillna(0).astype("int64").reset_index(drop=True)
