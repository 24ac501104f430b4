"""Hyperparameters of a CTR backbone; each backbone reads the fields it needs."""

from __future__ import annotations

from dataclasses import dataclass

from trackrec.config import Config, field


@dataclass
class ModelConfig(Config):
    embedding_dim: int = field(16, help="size of every feature field embedding")
    hidden_units: tuple[int, ...] = field((200, 80), help="the deep part's MLP sizes")
    dropout: float = field(0.1, help="dropout in the MLPs")
    connector_fields: int = field(2, help="feature fields the RecCoT connector produces (paper eq. 7)")
    connector_hidden: tuple[int, ...] = field((128,), help="hidden sizes of the connector MLP")
    attention_hidden: tuple[int, ...] = field((64, 16), help="DIN/DIEN: target-attention MLP sizes")
    gru_dim: int = field(32, help="DIEN: interest-extractor GRU size")
    cross_layers: int = field(3, help="DCN: cross layers")
    attention_layers: int = field(2, help="AutoInt: self-attention layers")
    attention_heads: int = field(2, help="AutoInt: heads per layer")
    attention_dim: int = field(32, help="AutoInt: attention size (split over heads)")
    gnn_steps: int = field(3, help="FiGNN: message-passing steps")
    reduction_ratio: int = field(3, help="FiBiNET: SENET squeeze ratio")

    def problems(self) -> list[str]:
        problems = self.at_least(
            1,
            "embedding_dim",
            "connector_fields",
            "gru_dim",
            "cross_layers",
            "attention_layers",
            "attention_heads",
            "attention_dim",
            "gnn_steps",
            "reduction_ratio",
        )
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.attention_dim % max(self.attention_heads, 1):
            problems.append(
                f"attention_dim ({self.attention_dim}) must be divisible by attention_heads ({self.attention_heads})"
            )
        return problems
