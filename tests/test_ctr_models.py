"""Every backbone: shapes, the dense connector, gradients, and that it can learn a planted signal."""

import numpy as np
import pytest
import torch

from trackrec.ctr.config import ModelConfig, TrainConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.registry import BACKBONES, build_model
from trackrec.ctr.train import evaluate, fit

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
        planted(3000, 1),
        planted(500, 2),
        TrainConfig(batch_size=128, lr=2e-2, max_epochs=15, patience=5, weight_decay=0.0),
        progress=False,
    )
    auc = evaluate(model, planted(1000, 3))["auc"]
    assert auc > 0.85, f"{name}: test AUC {auc:.3f} after {log['best_epoch']} epochs"


def test_connector_carries_information():
    """With ids carrying no signal, only the dense vector explains the label: DIN must use it."""
    torch.manual_seed(0)

    def data(seed):
        d = batch(2000, dense_dim=4, seed=seed)
        d["label"] = (d["dense"][:, 0] > 0).float()
        return d

    model = build_model("din", spec(4), ModelConfig(embedding_dim=8, hidden_units=(32,)))
    fit(model, data(1), data(2), TrainConfig(batch_size=128, lr=5e-3, max_epochs=8), progress=False)
    assert evaluate(model, data(3))["auc"] > 0.9


def test_early_stopping_restores_best_epoch():
    torch.manual_seed(0)
    model = build_model("deepfm", spec(), ModelConfig())
    log = fit(model, planted(800, 1), planted(300, 2), TrainConfig(max_epochs=10, patience=1, lr=5e-2), progress=False)
    aucs = [e["valid_auc"] for e in log["epochs"]]
    assert log["best_valid_auc"] == max(aucs) and log["best_epoch"] == int(np.argmax(aucs)) + 1
    assert evaluate(model, planted(300, 2))["auc"] == pytest.approx(max(aucs))
