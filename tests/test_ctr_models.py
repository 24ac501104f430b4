"""Every backbone: shapes, the dense connector, gradients, and that it can learn a planted signal."""

import numpy as np
import pandas as pd
import pytest
import torch

from trackrec.ctr.config import BACKBONES, ModelConfig, TrainConfig
from trackrec.ctr.features import FeatureSpec, rows_to_batch
from trackrec.ctr.registry import build_model
from trackrec.ctr.train import TensorBatches, evaluate, fit

N_USERS, N_ITEMS, L = 30, 50, 6


def spec(dense_dim=0):
    genres = torch.tensor([[0, 0]] + [[1 + i % 3, 4] for i in range(1, N_ITEMS)])
    years = torch.tensor([0] + [1 + i % 5 for i in range(1, N_ITEMS)])
    return FeatureSpec(N_USERS, N_ITEMS, L, genres, years, dense_dim)


def batch(n, dense_dim=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, N_ITEMS, (n, L), generator=g)
    hist[: n // 2, : L // 2] = 0  # left padding, and some empty histories
    hist[0] = 0
    data = {
        "user": torch.randint(1, N_USERS, (n,), generator=g),
        "item": torch.randint(1, N_ITEMS, (n,), generator=g),
        "hist_items": hist,
        "hist_labels": torch.where(hist > 0, torch.randint(1, 3, (n, L), generator=g), 0),
        "label": torch.zeros(n),
    }
    if dense_dim:
        data["dense"] = torch.randn(n, dense_dim, generator=g)
    return data


@pytest.mark.parametrize("name", sorted(BACKBONES))
@pytest.mark.parametrize("dense_dim", [0, 12])
def test_forward_and_gradients(name, dense_dim):
    torch.manual_seed(0)
    model = build_model(name, spec(dense_dim), ModelConfig())
    data = batch(16, dense_dim)
    logit = model(data)["logit"]
    assert logit.shape == (16,) and torch.isfinite(logit).all()
    logit.sum().backward()
    assert model.embed.item.weight.grad.abs().sum() > 0
    if dense_dim:
        assert model.embed.connector.mlp[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_wrong_dense_size_is_explained(name):
    model = build_model(name, spec(12), ModelConfig())
    with pytest.raises(ValueError, match=r"dense vector has shape \(4, 7\), the connector expects \(batch, 12\)"):
        model(batch(4, dense_dim=7))


def test_unknown_backbone():
    with pytest.raises(ValueError, match=r"unknown backbone 'xdeepfm'; choose one of \['autoint', 'dcn'"):
        build_model("xdeepfm", spec(), ModelConfig())


def planted(n, seed, dense_dim=0):
    """Label = the target item's first genre is the user's favourite (user % 3): a pure user x item cross."""
    data = batch(n, dense_dim, seed)
    genre_of_item = spec().item_genres[:, 0]
    data["label"] = (genre_of_item[data["item"]] == 1 + data["user"] % 3).float()
    return data


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_learns_a_planted_user_item_interaction(name):
    torch.manual_seed(0)
    model = build_model(name, spec(), ModelConfig(embedding_dim=8, hidden_units=(32,), dropout=0.0))
    log = fit(
        model,
        TensorBatches(planted(3000, 1), 128),
        TensorBatches(planted(500, 2)),
        TrainConfig(batch_size=128, lr=2e-2, max_epochs=15, patience=5, weight_decay=0.0),
        progress=False,
    )
    auc = evaluate(model, TensorBatches(planted(1000, 3)))["auc"]
    assert auc > 0.85, f"{name}: test AUC {auc:.3f} after {log['best_epoch']} epochs"


def test_connector_carries_information():
    """With ids carrying no signal, only the dense vector explains the label: DIN must use it."""
    torch.manual_seed(0)

    def data(seed):
        d = batch(2000, dense_dim=4, seed=seed)
        d["label"] = (d["dense"][:, 0] > 0).float()
        return d

    model = build_model("din", spec(4), ModelConfig(embedding_dim=8, hidden_units=(32,)))
    fit(model, TensorBatches(data(1), 128), TensorBatches(data(2)), TrainConfig(lr=5e-3, max_epochs=8), progress=False)
    assert evaluate(model, TensorBatches(data(3)))["auc"] > 0.9


def test_early_stopping_restores_best_epoch():
    torch.manual_seed(0)
    model = build_model("deepfm", spec(), ModelConfig())
    train, valid = TensorBatches(planted(800, 1), 256), TensorBatches(planted(300, 2))
    log = fit(model, train, valid, TrainConfig(max_epochs=10, patience=1, lr=5e-2), progress=False)
    aucs = [e["valid_auc"] for e in log["epochs"]]
    assert log["best_valid_auc"] == max(aucs) and log["best_epoch"] == int(np.argmax(aucs)) + 1
    assert evaluate(model, valid)["auc"] == pytest.approx(max(aucs))


def test_sparse_id_tables_learn_the_planted_interaction_and_touch_only_the_batch_rows():
    """sparse_ids on (what `auto` picks for large tables): lazy Adam on the user and item tables
    still learns; a step's gradient holds only the rows the batch read."""
    from trackrec.ctr.train import optimizer_step, sparse_ids

    torch.manual_seed(0)
    model = build_model("deepfm", spec(), ModelConfig(embedding_dim=8, hidden_units=(32,), dropout=0.0))
    config = TrainConfig(batch_size=128, lr=2e-2, max_epochs=15, patience=5, weight_decay=0.0, sparse_ids="on")
    fit(model, TensorBatches(planted(3000, 1), 128), TensorBatches(planted(500, 2)), config, progress=False)
    assert evaluate(model, TensorBatches(planted(1000, 3)))["auc"] > 0.85
    assert sparse_ids(model, "on") and not sparse_ids(model, "auto")  # the test tables are small
    sparse_ids(model, "on")
    batch = {k: v[:4] for k, v in planted(16, 4).items()}
    step = optimizer_step(model, config)
    step(batch, model(batch)["logit"].sum())
    grad = model.embed.user.weight.grad
    assert grad.is_sparse and set(grad.coalesce().indices()[0].tolist()) == set(batch["user"].tolist())


def test_a_batch_from_a_reversed_frame_is_the_reversed_batch():
    """Serving requests arrive in any order; a view with negative strides must batch like a copy."""
    rows = pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "target_item_id": [4, 5, 6],
            "label": [1, 0, 1],
            "history_item_ids": [[1, 2], [3], [4, 5, 6]],
            "history_labels": [[1, 0], [1], [0, 1, 1]],
        }
    )
    dense = np.arange(6, dtype=np.float32).reshape(3, 2)
    reversed_batch = rows_to_batch(rows.iloc[::-1], 4, dense[::-1])
    forward = rows_to_batch(rows, 4, dense)
    for key, values in forward.items():
        assert torch.equal(reversed_batch[key], values.flip(0)), key
