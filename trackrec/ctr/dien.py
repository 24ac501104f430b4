"""DIEN (Zhou et al. 2019): a GRU extracts interests from the history, an attention-gated GRU
(AUGRU) evolves them towards the target. The auxiliary next-item loss is left out: the history has
no sampled negatives here, and FuxiCTR also makes it optional."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.layers import MLP, FieldEmbedder


class AUGRUCell(nn.Module):
    """GRU cell whose update gate is scaled by an attention score a (B, 1)."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.gates = nn.Linear(input_dim + hidden_dim, 2 * hidden_dim)
        self.candidate = nn.Linear(input_dim + hidden_dim, hidden_dim)

    def forward(self, x: torch.Tensor, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        update, reset = torch.sigmoid(self.gates(torch.cat([x, h], -1))).chunk(2, -1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * h], -1)))
        update = a * update
        return (1 - update) * h + update * candidate


class DIEN(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.embed = FieldEmbedder(spec, config.embedding_dim, config.connector_fields, config.connector_hidden)
        dim, hidden = config.embedding_dim, config.gru_dim
        self.extractor = nn.GRU(dim, hidden, batch_first=True)
        self.query = nn.Linear(dim, hidden, bias=False)
        self.evolver = AUGRUCell(hidden, hidden)
        self.mlp = MLP(self.embed.n_fields * dim + hidden + dim, config.hidden_units, config.dropout, out_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        e = self.embed(batch)
        mask = e["mask"]
        interests, _ = self.extractor(e["history"])  # B x L x H (history is right-aligned)
        scores = (interests * self.query(e["target"]).unsqueeze(1)).sum(-1)  # B x L
        attention = torch.softmax(scores.masked_fill(~mask, -1e9), dim=1) * mask.float()
        h = interests.new_zeros(interests.shape[0], interests.shape[2])
        for step in range(interests.shape[1]):
            h_next = self.evolver(interests[:, step], h, attention[:, step : step + 1])
            h = torch.where(mask[:, step : step + 1], h_next, h)
        logit = self.mlp(torch.cat([e["fields"].flatten(1), h, e["target"]], dim=1)).squeeze(-1)
        return {"logit": logit}
