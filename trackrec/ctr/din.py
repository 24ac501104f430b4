"""DIN (Zhou et al. 2018): target attention over the history, then an MLP."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.layers import MLP, FieldEmbedder


class TargetAttention(nn.Module):
    """DIN's activation unit: weight each history item by an MLP of [q, k, q-k, q*k]; no softmax.

    query (B, E), keys (B, L, E), mask (B, L) -> (B, E)
    """

    def __init__(self, dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.score = MLP(4 * dim, hidden, out_dim=1)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = query.unsqueeze(1).expand_as(keys)
        weights = self.score(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)  # B x L
        weights = weights * mask.float()
        return (weights.unsqueeze(-1) * keys).sum(1)


class DIN(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.embed = FieldEmbedder(spec, config.embedding_dim, config.connector_fields, config.connector_hidden)
        dim = config.embedding_dim
        self.attention = TargetAttention(dim, config.attention_hidden)
        self.mlp = MLP(self.embed.n_fields * dim + dim, config.hidden_units, config.dropout, out_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        e = self.embed(batch)
        interest = self.attention(e["target"], e["history"], e["mask"])  # B x E
        logit = self.mlp(torch.cat([e["fields"].flatten(1), interest], dim=1)).squeeze(-1)
        return {"logit": logit}
