"""DCN (Wang et al. 2017): a cross network x_{l+1} = x_0 (x_l . w_l) + b_l + x_l beside a DNN."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.layers import MLP, FieldEmbedder


class CrossNetwork(nn.Module):
    """(B, D) -> (B, D), bounded-degree feature crosses."""

    def __init__(self, dim: int, layers: int):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(dim) * dim**-0.5) for _ in range(layers))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(dim)) for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for w, b in zip(self.weights, self.biases, strict=True):
            x = x0 * (x @ w).unsqueeze(-1) + b + x
        return x


class DCN(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.embed = FieldEmbedder(spec, config.embedding_dim, config.connector_fields, config.connector_hidden)
        flat = self.embed.n_fields * config.embedding_dim
        self.cross = CrossNetwork(flat, config.cross_layers)
        self.dnn = MLP(flat, config.hidden_units, config.dropout)
        self.out = nn.Linear(flat + self.dnn.out_dim, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        flat = self.embed(batch)["fields"].flatten(1)
        logit = self.out(torch.cat([self.cross(flat), self.dnn(flat)], dim=1)).squeeze(-1)
        return {"logit": logit}
