"""AutoInt (Song et al. 2019): stacked multi-head self-attention over fields with residuals; with
`hidden_units` set, a DNN runs beside it (the paper's AutoInt+)."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.layers import MLP, FieldEmbedder


class InteractingLayer(nn.Module):
    """(B, F, d_in) -> (B, F, d_out): multi-head self-attention with a projected residual, ReLU."""

    def __init__(self, d_in: int, d_out: int, heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_out, heads, batch_first=True, bias=False)
        self.project = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        attended, _ = self.attention(x, x, x, need_weights=False)
        return torch.relu(attended + x)


class AutoInt(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.embed = FieldEmbedder(spec, config.embedding_dim, config.connector_fields, config.connector_hidden)
        dims = [config.embedding_dim] + [config.attention_dim] * config.attention_layers
        pairs = zip(dims, dims[1:], strict=False)
        self.layers = nn.Sequential(*(InteractingLayer(a, b, config.attention_heads) for a, b in pairs))
        self.attention_out = nn.Linear(self.embed.n_fields * config.attention_dim, 1)
        self.dnn = (
            MLP(self.embed.n_fields * config.embedding_dim, config.hidden_units, config.dropout, out_dim=1)
            if config.hidden_units
            else None
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fields = self.embed(batch)["fields"]
        logit = self.attention_out(self.layers(fields).flatten(1)).squeeze(-1)
        if self.dnn is not None:
            logit = logit + self.dnn(fields.flatten(1)).squeeze(-1)
        return {"logit": logit}
