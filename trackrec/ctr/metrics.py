"""AUC, ACC (threshold 0.5) and LogLoss, as reported in the paper's tables."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score


def ctr_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    probs = np.clip(probs, 1e-7, 1 - 1e-7)
    return {
        "auc": float(roc_auc_score(labels, probs)),
        "acc": float(accuracy_score(labels, probs >= 0.5)),
        "logloss": float(log_loss(labels, probs, labels=[0, 1])),
    }
