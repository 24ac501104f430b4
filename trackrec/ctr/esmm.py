"""ESMM (Ma et al. 2018): a joint CTR x CVR model over shared embeddings, trained on every impression.

Two towers of the configured backbone share one field embedder (user, item, history and the RecCoT
connector's fields): pCTR = sigmoid(ctr tower), pCVR = sigmoid(cvr tower), and the loss is BCE(pCTR,
click) + BCE(pCTR * pCVR, click * conversion) over all impressions. The CVR tower is never fitted on
clicked rows alone, so it is trained on the space it is served on (every impression) and learns from
the many clicks where conversions are few: the two problems ESMM was made for (sample selection
bias, data sparsity). Why not a CVR model on clicks only: it would be served on impressions it
never saw, and a second connector would learn the same RecCoT projection from far fewer rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.registry import build_model
from trackrec.data.dataset import TABLE_FILES

EPS = 1e-7


class ESMM(nn.Module):
    """batch -> {"logit": (B,) CTR logit, "cvr_logit": (B,) post-click CVR logit}."""

    def __init__(self, backbone: str, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.ctr = build_model(backbone, spec, config)
        self.cvr = build_model(backbone, spec, config)
        self.cvr.embed = self.ctr.embed  # shared embeddings (and connector)
        self.embed = self.ctr.embed  # what the optimiser's sparse-table handling reads

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logit": self.ctr(batch)["logit"], "cvr_logit": self.cvr(batch)["logit"]}

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> torch.Tensor:
        click = batch["label"]
        ctcvr = torch.sigmoid(out["logit"]) * torch.sigmoid(out["cvr_logit"])
        target = click * batch["conversion"]
        return F.binary_cross_entropy_with_logits(out["logit"], click) + F.binary_cross_entropy(
            ctcvr.clamp(EPS, 1 - EPS), target
        )


def build_task_model(task: str, backbone: str, spec: FeatureSpec, config: ModelConfig) -> nn.Module:
    return ESMM(backbone, spec, config) if task == "esmm" else build_model(backbone, spec, config)


def has_conversions(dataset) -> bool:
    """Whether a prepared dataset carries the optional conversion column."""
    if dataset.tables is not None:
        return "conversion" in dataset.tables["samples"]
    return "conversion" in pq.read_schema(dataset.folder / TABLE_FILES["samples"]).names


@torch.no_grad()
def predict_tasks(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> pd.DataFrame:
    """p_click, p_conversion (post-click; NaN for a CTR-only model), click, conversion, per sample in order."""
    model.eval()
    parts = []
    for batch in batches:
        out = model(batch)
        p_click = torch.sigmoid(out["logit"]).numpy()
        p_conv = torch.sigmoid(out["cvr_logit"]).numpy() if "cvr_logit" in out else np.full(len(p_click), np.nan)
        conversion = batch["conversion"].numpy() if "conversion" in batch else np.full(len(p_click), np.nan)
        parts.append(pd.DataFrame({"p_click": p_click, "p_conversion": p_conv, "click": batch["label"].numpy()}))
        parts[-1]["conversion"] = conversion
    return pd.concat(parts, ignore_index=True)


def task_metrics(predicted: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per task: cvr (pCVR against conversions among clicks) and ctcvr (pCTR x pCVR against click
    and conversion over every impression); a task whose labels are all one class is left out."""
    from trackrec.ctr.metrics import ctr_metrics

    clicked = predicted[predicted.click == 1]
    tasks = {
        "cvr": (clicked.conversion.to_numpy(), clicked.p_conversion.to_numpy()),
        "ctcvr": (
            (predicted.click * predicted.conversion).to_numpy(),
            (predicted.p_click * predicted.p_conversion).to_numpy(),
        ),
    }
    return {name: ctr_metrics(y, p) for name, (y, p) in tasks.items() if len(np.unique(y)) == 2}
