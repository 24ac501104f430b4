"""DeepFM (Guo et al. 2017): first-order + FM pairwise interactions + a DNN, over the same fields."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.layers import MLP, FieldEmbedder


def fm_interaction(fields: torch.Tensor) -> torch.Tensor:
    """Sum of pairwise dot products of fields (B, F, E) -> (B,), in O(F E)."""
    return 0.5 * (fields.sum(1).pow(2) - fields.pow(2).sum(1)).sum(1)


class DeepFM(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.embed = FieldEmbedder(spec, config.embedding_dim, config.connector_fields, config.connector_hidden)
        flat = self.embed.n_fields * config.embedding_dim
        self.first_order = nn.Linear(flat, 1)
        self.dnn = MLP(flat, config.hidden_units, config.dropout, out_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fields = self.embed(batch)["fields"]
        flat = fields.flatten(1)
        logit = self.first_order(flat).squeeze(-1) + fm_interaction(fields) + self.dnn(flat).squeeze(-1)
        return {"logit": logit}
