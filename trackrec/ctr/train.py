"""Fit a backbone with early stopping on the validation split (never on test), then evaluate."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from trackrec.ctr.config import TrainConfig
from trackrec.ctr.metrics import ctr_metrics


def _batches(data: dict[str, torch.Tensor], size: int, order: torch.Tensor | None = None):
    n = len(data["label"])
    order = torch.arange(n) if order is None else order
    for start in range(0, n, size):
        index = order[start : start + size]
        yield {k: v[index] for k, v in data.items()}


@torch.no_grad()
def predict(model: nn.Module, data: dict[str, torch.Tensor], batch_size: int = 4096) -> np.ndarray:
    model.eval()
    return torch.cat([torch.sigmoid(model(b)["logit"]) for b in _batches(data, batch_size)]).numpy()


def evaluate(model: nn.Module, data: dict[str, torch.Tensor]) -> dict[str, float]:
    return ctr_metrics(data["label"].numpy(), predict(model, data))


def fit(
    model: nn.Module,
    train: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor],
    config: TrainConfig,
    progress: bool = True,
) -> dict:
    """Train with BCE; keep the weights of the best validation-AUC epoch. Returns the training log."""
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    best_auc, best_state, best_epoch, epochs = -1.0, None, 0, []
    started = time.perf_counter()
    bar = tqdm(range(1, config.max_epochs + 1), desc="epochs", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train["label"]), generator=generator)
        for batch in _batches(train, config.batch_size, order):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch)["logit"], batch["label"])
            loss.backward()
            optimizer.step()
        valid_metrics = evaluate(model, valid)
        epochs.append({"epoch": epoch, **{f"valid_{k}": v for k, v in valid_metrics.items()}})
        bar.set_postfix(valid_auc=f"{valid_metrics['auc']:.4f}")
        if valid_metrics["auc"] > best_auc:
            best_auc, best_epoch, best_state = valid_metrics["auc"], epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    return {
        "best_epoch": best_epoch,
        "best_valid_auc": best_auc,
        "epochs": epochs,
        "train_seconds": time.perf_counter() - started,
    }
