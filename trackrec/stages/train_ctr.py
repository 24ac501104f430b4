"""Stage train_ctr: fit one backbone (optionally with per-user RecCoT vectors), report test metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from trackrec.atomic import atomic_dir
from trackrec.config import Config, config_to_dict, field
from trackrec.ctr.features import FeatureSpec, item_side_tables, samples_to_tensors, user_vector_matrix
from trackrec.ctr.model_config import ModelConfig
from trackrec.ctr.registry import BACKBONES, build_model
from trackrec.ctr.train import TrainConfig, evaluate, fit
from trackrec.data.dataset import Dataset
from trackrec.errors import DataError
from trackrec.timing import work_begins


@dataclass
class CTRConfig(Config):
    backbone: str = field("din", help=f"one of {sorted(BACKBONES)}")
    history_len: int = field(10, help="most recent history items the model reads")
    user_vectors: str | None = field(
        None, help="parquet of user_id + embedding (RecCoT vectors); users without one read zeros; none: ids only"
    )
    dense_dim: int = field(0, help="size of the user vectors; 0 when none are given")
    model: ModelConfig = field(factory=ModelConfig, help="backbone hyperparameters")
    train: TrainConfig = field(factory=TrainConfig, help="optimisation and early stopping")

    def problems(self) -> list[str]:
        problems = self.at_least(1, "history_len")
        if self.backbone not in BACKBONES:
            problems.append(f"backbone: unknown {self.backbone!r}; choose one of {sorted(BACKBONES)}")
        if (self.user_vectors is None) != (self.dense_dim == 0):
            problems.append(
                f"user_vectors ({self.user_vectors!r}) and dense_dim ({self.dense_dim}) must be given together"
            )
        return problems


def load_user_vectors(config: CTRConfig, n_users: int):
    if config.user_vectors is None:
        return None
    path = Path(config.user_vectors)
    if not path.exists():
        raise DataError(str(path), "user vector file not found")
    return user_vector_matrix(pd.read_parquet(path), n_users, config.dense_dim, str(path))


def train_ctr(dataset_dir: str | Path, config: CTRConfig, output: str | Path, progress: bool = True) -> dict:
    """Train on train, stop early on valid, evaluate on test; write model.pt and metrics.json to `output`."""
    work_begins()
    dataset = Dataset.load(dataset_dir)
    vectors = load_user_vectors(config, dataset.n_users)
    genres, years = item_side_tables(dataset.items, dataset.n_items)
    spec = FeatureSpec(dataset.n_users, dataset.n_items, config.history_len, genres, years, config.dense_dim)
    data = {split: samples_to_tensors(frame, config.history_len, vectors) for split, frame in dataset.samples.items()}
    torch.manual_seed(config.train.seed)
    model = build_model(config.backbone, spec, config.model)
    log = fit(model, data["train"], data["valid"], config.train, progress=progress)
    result = {
        "backbone": config.backbone,
        "test": evaluate(model, data["test"]),
        **log,
        "config": config_to_dict(config),
        "dataset": dataset.meta,
    }
    with atomic_dir(output) as tmp:
        torch.save(model.state_dict(), tmp / "model.pt")
        (tmp / "metrics.json").write_text(json.dumps(result, indent=2))
    return result
