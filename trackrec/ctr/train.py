"""Fit a backbone with early stopping on the validation split (never on test), then evaluate."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from trackrec.ctr.config import SPARSE_FROM, TrainConfig
from trackrec.ctr.metrics import ctr_metrics


class TensorBatches:
    """Batches of tensors held in memory (tests, small tables): the interface every batch source has,
    iteration in order and `shuffled(generator)` for training."""

    def __init__(self, data: dict[str, torch.Tensor], size: int = 4096):
        self.data, self.size = data, size

    def _take(self, order: torch.Tensor):
        for start in range(0, len(order), self.size):
            index = order[start : start + self.size]
            yield {k: v[index] for k, v in self.data.items()}

    def __iter__(self):
        return self._take(torch.arange(len(self.data["label"])))

    def shuffled(self, generator: torch.Generator):
        return self._take(torch.randperm(len(self.data["label"]), generator=generator))


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """(click probabilities, labels) over every batch, in order."""
    model.eval()
    probs, labels = [], []
    for batch in batches:
        probs.append(torch.sigmoid(model(batch)["logit"]).numpy())
        labels.append(batch["label"].numpy())
    return np.concatenate(probs), np.concatenate(labels)


def evaluate(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    probs, labels = predict(model, batches)
    return ctr_metrics(labels, probs)


def sparse_ids(model: nn.Module, mode: str) -> bool:
    """Whether the user and item tables train sparsely: a dense Adam step reads and writes every row
    of every table (a step's cost grows with the users), a sparse one only the batch's rows; dense is
    the better model on small tables (every row decays every step), so `auto` goes sparse only from
    SPARSE_FROM rows."""
    tables = model.embed.id_tables
    sparse = mode == "on" or (mode == "auto" and sum(t.num_embeddings for t in tables) >= SPARSE_FROM)
    for table in tables:
        table.sparse = sparse
    return sparse


def optimizer_step(model: nn.Module, config: TrainConfig):
    """A step function on a loss: Adam with weight decay on the dense parameters; on sparse id tables
    lazy Adam (SparseAdam), their L2 added to the loss for the rows a batch reads."""
    sparse = [table.weight for table in model.embed.id_tables if table.sparse]
    ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in ids]
    optimizers = [torch.optim.Adam(dense, lr=config.lr, weight_decay=config.weight_decay)]
    optimizers += [torch.optim.SparseAdam(sparse, lr=config.lr)] if sparse else []

    def step(batch: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        if sparse:
            loss = loss + config.weight_decay * model.embed.batch_l2(batch)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()

    return step


def fit(
    model: nn.Module,
    train,
    valid,
    config: TrainConfig,
    progress: bool = True,
) -> dict:
    """Train with BCE; keep the weights of the best validation-AUC epoch. Returns the training log.
    train, valid: batch sources (TensorBatches, or a stream read from disk: trackrec/ctr/stream.py)."""
    generator = torch.Generator().manual_seed(config.seed)
    sparse_ids(model, config.sparse_ids)
    step = optimizer_step(model, config)
    loss_fn = nn.BCEWithLogitsLoss()
    best_auc, best_state, best_epoch, epochs = -1.0, None, 0, []
    started = time.perf_counter()
    bar = tqdm(range(1, config.max_epochs + 1), desc="epochs", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        for batch in train.shuffled(generator):
            out = model(batch)
            # a joint model (trackrec/ctr/esmm.py) has its own loss; early stopping stays on click AUC
            step(batch, model.loss(batch, out) if hasattr(model, "loss") else loss_fn(out["logit"], batch["label"]))
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
