"""The ctr section of the run config: the backbone, its hyperparameters (each backbone reads the
fields it needs) and its training. Plain dataclasses: reading the config imports no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trackrec.config import SEED, TTL_DAYS, Config, Range, field
from trackrec.reach import path_problems

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

UNITS = Range(1, 65_536)  # a layer's width (each of a list's)
LAYERS = Range(1, 1024)
SPARSE_FROM = 200_000  # user + item rows from which `sparse_ids: auto` trains the id tables sparsely


@dataclass
class ModelConfig(Config):
    embedding_dim: int = field(16, help="size of every feature field embedding", range=Range(1, 4096))
    user_id: bool = field(
        True, help="read the user-id field; false: the user side is the history window and the RecCoT vector only"
    )
    hidden_units: tuple[int, ...] = field((200, 80), help="the deep part's MLP sizes", range=UNITS)
    dropout: float = field(0.1, help="dropout in the MLPs", range=Range(0, 1, high_open=True))
    connector_fields: int = field(
        2, help="feature fields the RecCoT connector produces (paper eq. 7)", range=Range(1, 256)
    )
    connector_hidden: tuple[int, ...] = field((128,), help="hidden sizes of the connector MLP", range=UNITS)
    attention_hidden: tuple[int, ...] = field((64, 16), help="DIN/DIEN: target-attention MLP sizes", range=UNITS)
    gru_dim: int = field(32, help="DIEN: interest-extractor GRU size", range=UNITS)
    cross_layers: int = field(3, help="DCN: cross layers", range=LAYERS)
    attention_layers: int = field(2, help="AutoInt: self-attention layers", range=LAYERS)
    attention_heads: int = field(2, help="AutoInt: heads per layer", range=Range(1, 256))
    attention_dim: int = field(32, help="AutoInt: attention size (split over heads)", range=UNITS)
    gnn_steps: int = field(3, help="FiGNN: message-passing steps", range=LAYERS)
    reduction_ratio: int = field(3, help="FiBiNET: SENET squeeze ratio", range=Range(1, 1024))

    def problems(self) -> list[str]:
        if self.attention_dim % self.attention_heads:
            return [
                f"attention_dim ({self.attention_dim}) must be divisible by attention_heads ({self.attention_heads})"
            ]
        return []


@dataclass
class TrainConfig(Config):
    batch_size: int = field(256, help="samples per step", range=Range(1, 1 << 24))
    lr: float = field(1e-3, help="Adam learning rate", range=Range(0, 10, low_open=True))
    weight_decay: float = field(
        1e-5, help="L2 on every parameter (embeddings overfit fast on small data)", range=Range(0, 1)
    )
    sparse_ids: Literal["auto", "on", "off"] = field(
        "auto",
        help="user and item tables trained sparsely (a step costs the same at any table size; lazy Adam) or "
        f"densely (Adam decays every row every step: better on small data); auto: sparse from {SPARSE_FROM:,} rows",
    )
    max_epochs: int = field(20, help="upper bound on epochs", range=Range(1, 100_000))
    patience: int = field(2, help="epochs without a better validation AUC before stopping", range=Range(1, 100_000))
    seed: int = field(2023, help="seed for initialisation and shuffling", range=SEED)


@dataclass
class CTRConfig(Config):
    backbone: str = field("din", help="a name in BACKBONES above (an unknown one is refused with the list)")
    history_len: int = field(10, help="most recent history items the model reads", range=Range(1, 10_000))
    user_vectors: str | None = field(
        None,
        help="parquet of user_id, as_of, embedding (RecCoT snapshots): a sample reads its user's newest from "
        "before it (zeros where none); none: ids only",
    )
    dense_dim: int = field(0, help="size of the user vectors; 0 when none are given", range=Range(0, 65_536))
    vector_ttl_days: int | None = field(
        None,
        help="a snapshot older than this is not read (none: never); the pipeline sets features.store.ttl_days",
        range=TTL_DAYS,
    )
    task: Literal["ctr", "esmm"] = field(
        "ctr",
        help="ctr: a click model; esmm: a joint CTR x CVR model (ESMM: two towers of the backbone over shared "
        "embeddings, trained on every impression; needs the dataset's conversion column)",
    )
    model: ModelConfig = field(factory=ModelConfig, help="backbone hyperparameters")
    train: TrainConfig = field(factory=TrainConfig, help="optimisation and early stopping")

    def problems(self) -> list[str]:
        problems = path_problems("user_vectors", self.user_vectors)
        if self.backbone not in BACKBONES:
            problems.append(f"backbone: unknown {self.backbone!r}; choose one of {sorted(BACKBONES)}")
        if (self.user_vectors is None) != (self.dense_dim == 0):
            problems.append(
                f"user_vectors ({self.user_vectors!r}) and dense_dim ({self.dense_dim}) must be given together"
            )
        return problems
