"""The ctr section of the run config: the backbone, its hyperparameters (each backbone reads the
fields it needs) and its training. Plain dataclasses: reading the config imports no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trackrec.config import Config, field

# Every backbone a config may name, with the module and class that define it (imported only when
# built, by trackrec/ctr/registry.py), so checking a config loads no torch.
BACKBONES: dict[str, tuple[str, str]] = {
    "din": ("trackrec.ctr.din", "DIN"),
    "deepfm": ("trackrec.ctr.deepfm", "DeepFM"),
    "dcn": ("trackrec.ctr.dcn", "DCN"),
    "autoint": ("trackrec.ctr.autoint", "AutoInt"),
    "fignn": ("trackrec.ctr.fignn", "FiGNN"),
    "fibinet": ("trackrec.ctr.fibinet", "FiBiNET"),
    "dien": ("trackrec.ctr.dien", "DIEN"),
}

SPARSE_FROM = 200_000  # user + item rows from which `sparse_ids: auto` trains the id tables sparsely


@dataclass
class ModelConfig(Config):
    embedding_dim: int = field(16, help="size of every feature field embedding")
    user_id: bool = field(
        True, help="read the user-id field; false: the user side is the history window and the RecCoT vector only"
    )
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


@dataclass
class TrainConfig(Config):
    batch_size: int = field(256, help="samples per step")
    lr: float = field(1e-3, help="Adam learning rate")
    weight_decay: float = field(1e-5, help="L2 on every parameter (embeddings overfit fast on small data)")
    sparse_ids: Literal["auto", "on", "off"] = field(
        "auto",
        help="user and item tables trained sparsely (a step costs the same at any table size; lazy Adam) or "
        f"densely (Adam decays every row every step: better on small data); auto: sparse from {SPARSE_FROM:,} rows",
    )
    max_epochs: int = field(20, help="upper bound on epochs")
    patience: int = field(2, help="epochs without a better validation AUC before stopping")
    seed: int = field(2023, help="seed for initialisation and shuffling")

    def problems(self) -> list[str]:
        return self.at_least(1, "batch_size", "max_epochs", "patience") + self.positive("lr")


@dataclass
class CTRConfig(Config):
    backbone: str = field("din", help="a name in BACKBONES above (an unknown one is refused with the list)")
    history_len: int = field(10, help="most recent history items the model reads")
    user_vectors: str | None = field(
        None,
        help="parquet of user_id, as_of, embedding (RecCoT snapshots): a sample reads its user's newest from "
        "before it (zeros where none); none: ids only",
    )
    dense_dim: int = field(0, help="size of the user vectors; 0 when none are given")
    vector_ttl_days: int | None = field(
        None, help="a snapshot older than this is not read (none: never); the pipeline sets features.store.ttl_days"
    )
    task: Literal["ctr", "esmm"] = field(
        "ctr",
        help="ctr: a click model; esmm: a joint CTR x CVR model (ESMM: two towers of the backbone over shared "
        "embeddings, trained on every impression; needs the dataset's conversion column)",
    )
    model: ModelConfig = field(factory=ModelConfig, help="backbone hyperparameters")
    train: TrainConfig = field(factory=TrainConfig, help="optimisation and early stopping")

    def problems(self) -> list[str]:
        problems = self.at_least(1, "history_len")
        if self.backbone not in BACKBONES:
            problems.append(f"backbone: unknown {self.backbone!r}; choose one of {sorted(BACKBONES)}")
        if (self.user_vectors is None) != (self.dense_dim == 0):
            problems.append(
                f"user_vectors ({self.user_vectors!r}) and dense_dim ({self.dense_dim}) must be given together"
            )
        return problems
