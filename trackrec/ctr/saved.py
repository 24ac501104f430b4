"""A trained CTR model on disk: its weights and the metrics.json that records how it was built.

The train_ctr stage writes this layout; serving and the CTR reward read it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from trackrec.config import config_from_dict
from trackrec.ctr.config import ModelConfig
from trackrec.ctr.esmm import build_task_model
from trackrec.ctr.features import FeatureSpec, item_side_tables
from trackrec.data.dataset import Dataset

WEIGHTS, METRICS = "model.pt", "metrics.json"


def save_trained(model: nn.Module, result: dict, folder: Path) -> None:
    """result: the training log, test metrics and `config` (the CTRConfig as a dict)."""
    torch.save(model.state_dict(), folder / WEIGHTS)
    (folder / METRICS).write_text(json.dumps(result, indent=2))


def trained_metrics(folder: str | Path) -> dict:
    return json.loads((Path(folder) / METRICS).read_text())


def load_trained(folder: str | Path, dataset: Dataset) -> tuple[nn.Module, dict]:
    """(the model in eval mode, the ctr config it was trained with) for the dataset it was trained on."""
    trained = trained_metrics(folder)["config"]
    genres, years = item_side_tables(dataset.items, dataset.n_items)
    spec = FeatureSpec(dataset.n_users, dataset.n_items, trained["history_len"], genres, years, trained["dense_dim"])
    model = build_task_model(
        trained.get("task", "ctr"), trained["backbone"], spec, config_from_dict(ModelConfig, trained["model"])
    )
    model.load_state_dict(torch.load(Path(folder) / WEIGHTS, weights_only=True))
    return model.eval(), trained
