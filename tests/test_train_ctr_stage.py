import numpy as np
import pandas as pd
import pytest
import torch

from tests.synthetic import collm_rows, split_rows, write_collm
from trackrec.config import config_from_dict
from trackrec.ctr.config import CTRConfig, TrainConfig
from trackrec.ctr.features import FeatureSpec, item_side_tables, rows_to_batch
from trackrec.ctr.registry import build_model
from trackrec.ctr.saved import WEIGHTS, trained_metrics
from trackrec.ctr.stream import SplitStream
from trackrec.ctr.train import predict
from trackrec.data.config import DataConfig
from trackrec.data.dataset import Dataset
from trackrec.errors import ConfigError, DataError
from trackrec.stages.prepare_data import prepare_data
from trackrec.stages.train_ctr import load_user_vectors, train_ctr

FAST = TrainConfig(max_epochs=2, batch_size=64)
LEARN = TrainConfig(max_epochs=10, batch_size=64, lr=0.003, patience=3)


def write_vectors(path, users, dim, as_of=None):
    """One snapshot per entry of `users` (as of 0, before every event, unless `as_of` says)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": users,
            "as_of": [0] * len(users) if as_of is None else as_of,
            "embedding": [rng.normal(size=dim).astype("float32") for _ in users],
        }
    )
    frame.to_parquet(path)
    return path


def test_learns_the_users_taste_and_writes_metrics(tmp_path):
    """Each user likes one genre (85% against 15%): with 100 events for each of 40 users a trained
    model ranks the test split well above chance, where a constant or an untrained model scores 0.5."""
    root = write_collm(tmp_path / "data", collm_rows(n_users=40, per_user=100))
    prepare_data(DataConfig(root=str(root)), tmp_path / "prepared")
    config = CTRConfig(backbone="deepfm", train=LEARN)
    result = train_ctr(tmp_path / "prepared", config, tmp_path / "ctr", progress=False)
    written = trained_metrics(tmp_path / "ctr")
    assert written["test"] == result["test"]
    assert result["test"]["auc"] > 0.7, result["test"]
    assert (tmp_path / "ctr" / WEIGHTS).stat().st_size > 0


def test_each_sample_reads_its_users_newest_snapshot_from_before_it(prepared, tmp_path):
    """The training stream's vector of every sample is the one a loop over the snapshots picks: its
    user's newest with as_of strictly before the sample (one at a sample's own time is not read)."""
    dataset = Dataset.open(prepared)
    samples = dataset.samples()
    users, as_of = [], []
    for user, times in samples.groupby("user_id").timestamp:
        chosen = sorted({int(times.iloc[len(times) // 3]), int(times.iloc[2 * len(times) // 3]), int(times.max())})
        users += [user] * len(chosen)
        as_of += chosen
    path = write_vectors(tmp_path / "v.parquet", users, 4, as_of)
    vectors = load_user_vectors(CTRConfig(user_vectors=str(path), dense_dim=4), dataset.n_users)
    table, read = pd.read_parquet(path), []
    for split in ("train", "test"):
        rows = samples[samples.split == split]
        got = np.concatenate([b["dense"].numpy() for b in SplitStream(dataset, split, 5, 64, vectors)])
        expected = []
        for user, time in zip(rows.user_id, rows.timestamp, strict=True):
            earlier = table[(table.user_id == user) & (table.as_of < time)]
            expected.append(earlier.embedding.iloc[-1] if len(earlier) else np.zeros(4, np.float32))
        np.testing.assert_array_equal(got, np.stack(expected))
        read.append(got.any(axis=1))
        assert rows.timestamp.isin(table.as_of).any()  # samples at a snapshot's own time are there
    read = np.concatenate(read)
    assert read.any() and not read.all()  # early samples read no snapshot yet


def test_user_vectors_reach_their_users_and_move_their_predictions(prepared, tmp_path):
    dataset = Dataset.open(prepared)
    users = sorted(split_rows(dataset, "train")["user_id"].unique())
    path = write_vectors(tmp_path / "v.parquet", users, 8)
    config = CTRConfig(user_vectors=str(path), dense_dim=8, train=FAST)
    train_ctr(prepared, config, tmp_path / "ctr", progress=False)
    vectors = load_user_vectors(config, dataset.n_users)
    genres, years = item_side_tables(dataset.items, dataset.n_items)
    spec = FeatureSpec(dataset.n_users, dataset.n_items, config.history_len, genres, years, config.dense_dim)
    model = build_model(config.backbone, spec, config.model)
    model.load_state_dict(torch.load(tmp_path / "ctr" / WEIGHTS))
    test, user = split_rows(dataset, "test"), users[0]
    dense = vectors.gather(vectors.rows_for(test.user_id.to_numpy(), test.timestamp.to_numpy()))
    of_user = test.user_id.to_numpy() == user
    without_user = np.where(of_user[:, None], 0.0, dense).astype(np.float32)
    before = predict(model, [rows_to_batch(test, config.history_len, dense)])[0]
    after = predict(model, [rows_to_batch(test, config.history_len, without_user)])[0]
    moved = ~np.isclose(before, after, rtol=0, atol=1e-7)
    assert of_user.any() and moved[of_user].all() and not moved[~of_user].any()


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
        (lambda f: pd.concat([f, f.iloc[:1]]), r"row 3, field 'as_of': duplicate snapshot: user_id 1 as of 0"),
        (lambda f: f.assign(user_id=[1, 2, 10_000]), r"row 2, field 'user_id': user_id 10000 is outside the dataset"),
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


def test_a_split_of_one_label_is_named_before_anything_is_written(prepared, tmp_path):
    """A clicks-only log (every label 1) crashed training with a raw TypeError."""
    dataset = Dataset.open(prepared)
    samples = dataset.samples()
    samples.loc[samples.split == "valid", "label"] = 1
    history = dataset.history_rows(0, dataset.meta["tables"]["history"]["rows"])
    Dataset.built(samples, history, dataset.items, dataset.meta, 50, "t").save(tmp_path / "clicks-only")
    with pytest.raises(DataError, match=r"clicks-only/valid, field 'label': only label 1: a CTR model needs"):
        train_ctr(tmp_path / "clicks-only", CTRConfig(train=FAST), tmp_path / "ctr", progress=False)
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
