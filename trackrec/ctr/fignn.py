"""FiGNN (Li et al. 2019): fields are nodes of a complete graph; attention-weighted messages update
each node through a GRU cell with residuals; an attentional readout scores the final nodes."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.config import ModelConfig
from trackrec.ctr.features import FeatureSpec
from trackrec.ctr.layers import FieldEmbedder


class FieldGraph(nn.Module):
    """(B, F, E) -> (B, F, E) after `steps` rounds of message passing."""

    def __init__(self, n_fields: int, dim: int, steps: int):
        super().__init__()
        self.steps = steps
        self.edge_src = nn.Linear(dim, 1, bias=False)
        self.edge_dst = nn.Linear(dim, 1, bias=False)
        self.transform = nn.Parameter(torch.randn(n_fields, dim, dim) * dim**-0.5)  # per-node W_out
        self.gru = nn.GRUCell(dim, dim)
        self.register_buffer("self_loop", torch.eye(n_fields, dtype=torch.bool), persistent=False)

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        b, f, e = h0.shape
        # Edge weights from the initial fields: leaky(w^T [h_i || h_j]), softmax over j != i.
        scores = nn.functional.leaky_relu(self.edge_src(h0) + self.edge_dst(h0).transpose(1, 2))  # B x F x F
        adjacency = torch.softmax(scores.masked_fill(self.self_loop, -1e9), dim=-1)
        h = h0
        for _ in range(self.steps):
            messages = torch.einsum("bfe,fed->bfd", h, self.transform)  # B x F x E
            aggregated = adjacency @ messages
            h = self.gru(aggregated.reshape(b * f, e), h.reshape(b * f, e)).view(b, f, e) + h0
        return h


class FiGNN(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig):
        super().__init__()
        self.embed = FieldEmbedder(spec, config.embedding_dim, config.connector_fields, config.connector_hidden)
        dim, n = config.embedding_dim, self.embed.n_fields
        self.graph = FieldGraph(n, dim, config.gnn_steps)
        self.node_score = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        self.node_weight = nn.Linear(n * dim, n, bias=False)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.graph(self.embed(batch)["fields"])
        scores = self.node_score(h).squeeze(-1)  # B x F
        weights = self.node_weight(h.flatten(1))  # B x F
        return {"logit": (scores * weights).sum(1)}
