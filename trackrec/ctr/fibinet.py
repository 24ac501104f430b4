"""FiBiNET (Huang et al. 2019): SENET re-weights fields; bilinear interactions of the original and
the re-weighted fields feed a DNN beside a first-order term."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.layers import MLP, FieldEmbedder


class SENet(nn.Module):
    """(B, F, E) -> (B, F, E): squeeze each field to its mean, excite, scale."""

    def __init__(self, n_fields: int, ratio: int):
        super().__init__()
        squeezed = max(1, n_fields // ratio)
        self.excite = nn.Sequential(nn.Linear(n_fields, squeezed), nn.ReLU(), nn.Linear(squeezed, n_fields), nn.ReLU())

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        return fields * self.excite(fields.mean(-1)).unsqueeze(-1)


class Bilinear(nn.Module):
    """'field-each' bilinear: p_ij = (v_i W_i) * v_j for i < j; (B, F, E) -> (B, F(F-1)/2, E)."""

    def __init__(self, n_fields: int, dim: int):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(n_fields, dim, dim) * dim**-0.5)
        left, right = torch.triu_indices(n_fields, n_fields, offset=1)
        self.register_buffer("left", left, persistent=False)
        self.register_buffer("right", right, persistent=False)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        projected = torch.einsum("bfe,fed->bfd", fields, self.weights)
        return projected[:, self.left] * fields[:, self.right]


class FiBiNET(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.embed = FieldEmbedder(spec, config.embedding_dim, config.connector_fields, config.connector_hidden)
        n, dim = self.embed.n_fields, config.embedding_dim
        self.senet = SENet(n, config.reduction_ratio)
        self.bilinear = Bilinear(n, dim)
        self.first_order = nn.Linear(n * dim, 1)
        self.dnn = MLP(n * (n - 1) * dim, config.hidden_units, config.dropout, out_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fields = self.embed(batch)["fields"]
        crosses = torch.cat([self.bilinear(fields), self.bilinear(self.senet(fields))], dim=1)
        logit = self.first_order(fields.flatten(1)).squeeze(-1) + self.dnn(crosses.flatten(1)).squeeze(-1)
        return {"logit": logit}
