import json

import numpy as np
import pandas as pd
import pytest

from trackrec.config import config_from_dict
from trackrec.ctr.config import CTRConfig, TrainConfig
from trackrec.data.dataset import Dataset
from trackrec.errors import ConfigError, DataError
from trackrec.stages.train_ctr import train_ctr

FAST = TrainConfig(max_epochs=2, batch_size=64)


def write_vectors(path, users, dim):
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_id": users, "embedding": [rng.normal(size=dim).astype("float32") for _ in users]}).to_parquet(
        path
    )
    return path


def test_trains_and_writes_metrics(prepared, tmp_path):
    result = train_ctr(prepared, CTRConfig(backbone="deepfm", train=FAST), tmp_path / "ctr", progress=False)
    written = json.loads((tmp_path / "ctr" / "metrics.json").read_text())
    assert written["test"] == result["test"] and 0.0 <= result["test"]["auc"] <= 1.0
    assert (tmp_path / "ctr" / "model.pt").stat().st_size > 0


def test_with_user_vectors(prepared, tmp_path):
    users = sorted(Dataset.load(prepared).samples["train"]["user_id"].unique())
    vectors = write_vectors(tmp_path / "v.parquet", users, 8)
    result = train_ctr(
        prepared, CTRConfig(user_vectors=str(vectors), dense_dim=8, train=FAST), tmp_path / "ctr", progress=False
    )
    assert result["config"]["dense_dim"] == 8


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda f: f.assign(embedding=[np.ones(5, "float32")] * len(f)),
            r"row 0, field 'embedding': vector has size 5, expected 8",
        ),
        (
            lambda f: f.assign(embedding=[np.full(8, np.nan, "float32")] * len(f)),
            r"row 0, field 'embedding': vector holds NaN",
        ),
        (lambda f: pd.concat([f, f.iloc[:1]]), r"field 'user_id': duplicate user_id 1"),
        (lambda f: f.drop(columns="embedding"), r"field 'embedding': missing column"),
    ],
)
def test_bad_vectors_fail_before_anything_is_written(prepared, tmp_path, mutate, expected):
    path = write_vectors(tmp_path / "v.parquet", [1, 2, 3], 8)
    mutate(pd.read_parquet(path)).to_parquet(path)
    with pytest.raises(DataError, match=expected):
        train_ctr(
            prepared, CTRConfig(user_vectors=str(path), dense_dim=8, train=FAST), tmp_path / "ctr", progress=False
        )
    assert not (tmp_path / "ctr").exists()


def test_unknown_backbone_in_config():
    with pytest.raises(
        ConfigError,
        match=r"backbone: unknown 'dinn'; choose one of \['autoint', 'dcn', 'deepfm', 'dien', 'din', 'fibinet'",
    ):
        config_from_dict(CTRConfig, {"backbone": "dinn"}, "ctr.yaml")


def test_vectors_without_dim_is_a_config_error():
    with pytest.raises(ConfigError, match="must be given together"):
        CTRConfig(user_vectors="v.parquet")
