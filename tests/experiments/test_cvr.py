"""CVR beside CTR: the behaviour log's optional conversion label (post-click: refused without a click,
the row named), carried into the dataset, and a joint ESMM model that learns it through the same
connector as the RecCoT vector, with metrics per task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.experiments.world import TEST_START, VALID_START, behaviour_log, write_log
from trackrec.ctr.config import CTRConfig, TrainConfig
from trackrec.ctr.saved import trained_metrics
from trackrec.data.config import DataConfig
from trackrec.data.dataset import Dataset
from trackrec.errors import DataError
from trackrec.stages.prepare_data import prepare_data
from trackrec.stages.train_ctr import train_ctr

LEARN = TrainConfig(max_epochs=10, batch_size=64, lr=0.003, patience=3)


def log_config(path, source: str = "behaviour-log", **more) -> DataConfig:
    return DataConfig(source=source, path=str(path), valid_start=VALID_START, test_start=TEST_START, **more)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_conversion_without_a_click_is_refused_with_its_row_named(tmp_path, kind):
    log = behaviour_log(n_users=5, per_user=10)
    row = int((log.label == 0).to_numpy().nonzero()[0][2])
    log.loc[row, "conversion"] = 1
    if kind == "parquet":
        path, config = write_log(tmp_path, log), log_config(tmp_path / "log.parquet")
    else:
        path = tmp_path / "log.csv"
        log.drop(columns="genres").assign(timestamp=log.timestamp.astype("int64") // 10**9).to_csv(path, index=False)
        config = log_config(path, "behaviour-log-csv")
    with pytest.raises(DataError, match=rf"{path.name}, row {row}, field 'conversion': a conversion without a click"):
        prepare_data(config, tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()


def test_conversions_reach_the_dataset_and_a_log_without_them_is_unchanged(tmp_path):
    log = behaviour_log(n_users=8, per_user=20)
    dataset = prepare_data(log_config(write_log(tmp_path / "with", log)), tmp_path / "p1")
    samples = Dataset.open(tmp_path / "p1").samples(columns=["label", "conversion"])
    assert samples.conversion.sum() == log.conversion.sum() and (samples.conversion <= samples.label).all()
    without = prepare_data(log_config(write_log(tmp_path / "without", log.drop(columns="conversion"))), tmp_path / "p2")
    assert without.meta["rows"] == dataset.meta["rows"]
    assert "conversion" not in Dataset.open(tmp_path / "p2").samples().columns


def test_the_joint_model_learns_cvr_on_a_log_with_known_conversion_rates(tmp_path):
    """A click converts with 0.6 on every third item and 0.1 on the others: the CVR tower, which
    reads the items, ranks the test clicks' conversions well above chance (0.5)."""
    prepare_data(log_config(write_log(tmp_path, behaviour_log(n_users=40, per_user=100))), tmp_path / "prepared")
    config = CTRConfig(backbone="deepfm", history_len=5, task="esmm", train=LEARN)
    result = train_ctr(tmp_path / "prepared", config, tmp_path / "ctr", progress=False)
    assert result["test"]["auc"] > 0.7, result["test"]  # the click task is still learned
    assert result["tasks"]["cvr"]["auc"] > 0.65, result["tasks"]
    assert set(result["tasks"]) == {"cvr", "ctcvr"}
    assert trained_metrics(tmp_path / "ctr")["config"]["task"] == "esmm"


def test_a_joint_model_on_a_log_without_conversions_is_refused(tmp_path):
    log = behaviour_log(n_users=8, per_user=20).drop(columns="conversion")
    prepare_data(log_config(write_log(tmp_path, log)), tmp_path / "prepared")
    with pytest.raises(DataError, match="field 'conversion': no conversion column"):
        train_ctr(tmp_path / "prepared", CTRConfig(task="esmm"), tmp_path / "ctr", progress=False)


def test_the_rating_proxy_makes_conversions_of_highly_rated_clicks(tmp_path):
    """A log with ratings and no conversions: click = rating >= 4 (its label), conversion = rating 5."""
    log = behaviour_log(n_users=8, per_user=20, seed=2).drop(columns="conversion")
    log["rating"] = np.random.default_rng(0).integers(1, 6, len(log)).astype(float)
    log["label"] = (log.rating >= 4).astype(int)
    prepare_data(log_config(write_log(tmp_path, log), conversion_at_rating=5), tmp_path / "prepared")
    samples = Dataset.open(tmp_path / "prepared").samples(columns=["label", "conversion"])
    assert samples.conversion.sum() == (log.rating == 5).sum() and (samples.conversion <= samples.label).all()
    both = write_log(tmp_path / "both", behaviour_log(n_users=4, per_user=10))
    with pytest.raises(DataError, match="has its own conversion column"):
        prepare_data(log_config(both, conversion_at_rating=5), tmp_path / "x")


def test_conversions_prepared_in_shards_are_those_of_one_pass(tmp_path):
    from tests.test_prepare_shards import in_shards

    config = log_config(write_log(tmp_path, behaviour_log(n_users=12, per_user=20)))
    prepare_data(config, tmp_path / "whole")
    joined = in_shards(config, tmp_path, 3)
    columns = ["user_id", "timestamp", "label", "conversion"]
    pd.testing.assert_frame_equal(
        joined.samples(columns=columns), Dataset.open(tmp_path / "whole").samples(columns=columns)
    )
    assert joined.samples(columns=columns).conversion.sum() > 0
