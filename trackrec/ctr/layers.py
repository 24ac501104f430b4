"""Layers shared by the backbones: MLP blocks, the field embedder and the RecCoT connector."""

from __future__ import annotations

import torch
from torch import nn

from trackrec.ctr.features import FeatureSpec


class MLP(nn.Sequential):
    """Linear -> ReLU -> Dropout per hidden size, then an optional output layer."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], dropout: float = 0.0, out_dim: int | None = None):
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(in_dim, size), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = size
        if out_dim is not None:
            layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)
        self.out_dim = out_dim if out_dim is not None else in_dim


class Connector(nn.Module):
    """Paper eq. 7-8: an MLP from the semantic space of a text vector to `n_fields` feature fields.

    dense (B, D) -> (B, n_fields, E)
    """

    def __init__(self, dense_dim: int, embedding_dim: int, n_fields: int, hidden: tuple[int, ...]):
        super().__init__()
        self.dense_dim, self.n_fields, self.embedding_dim = dense_dim, n_fields, embedding_dim
        self.mlp = MLP(dense_dim, hidden, out_dim=n_fields * embedding_dim)

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        if dense.dim() != 2 or dense.shape[1] != self.dense_dim:
            raise ValueError(
                f"dense vector has shape {tuple(dense.shape)}, the connector expects (batch, {self.dense_dim}); "
                "re-encode the RecCoTs with the configured encoder or set ctr.dense_dim to match"
            )
        return self.mlp(dense).view(-1, self.n_fields, self.embedding_dim)


class FieldEmbedder(nn.Module):
    """Embeds a batch into feature fields, plus the target and the history for sequence models.

    fields  (B, F, E): user, item id, item genres (mean), item year, history (mean of item + label),
                       then the connector's fields when a dense vector is configured
    target  (B, E):    item id + genres + year of the target
    history (B, L, E): same for each history item, plus its like/dislike embedding
    mask    (B, L):    True where a history slot holds an item
    """

    base_fields = 5

    def __init__(
        self,
        spec: FeatureSpec,
        embedding_dim: int,
        connector_fields: int = 1,
        connector_hidden: tuple[int, ...] = (256,),
    ):
        super().__init__()
        self.user = nn.Embedding(spec.n_users, embedding_dim, padding_idx=0)
        self.item = nn.Embedding(spec.n_items, embedding_dim, padding_idx=0)
        self.genre = nn.Embedding(spec.n_genres, embedding_dim, padding_idx=0)
        self.year = nn.Embedding(spec.n_years, embedding_dim, padding_idx=0)
        self.reaction = nn.Embedding(3, embedding_dim, padding_idx=0)
        self.register_buffer("item_genres", spec.item_genres, persistent=False)
        self.register_buffer("item_years", spec.item_years, persistent=False)
        self.connector = (
            Connector(spec.dense_dim, embedding_dim, connector_fields, connector_hidden) if spec.dense_dim else None
        )
        self.n_fields = self.base_fields + (connector_fields if spec.dense_dim else 0)
        self.user_ids = spec.user_ids
        self.embedding_dim = embedding_dim
        for table in (self.user, self.item, self.genre, self.year, self.reaction):
            nn.init.normal_(table.weight, std=1e-2)
            with torch.no_grad():
                table.weight[0].zero_()  # padding rows stay zero

    @property
    def id_tables(self) -> tuple[nn.Embedding, nn.Embedding]:
        """The tables that grow with the users and the items (trained sparsely at scale)."""
        return self.user, self.item

    def batch_l2(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Half the squared norm of the id-table rows `batch` reads, each row once: L2 on the sparse
        tables applied where they are used (DIN's mini-batch aware regularisation)."""
        users = torch.unique(batch["user"])
        items = torch.unique(torch.cat([batch["item"], batch["hist_items"].reshape(-1)]))
        return 0.5 * (self.user(users).pow(2).sum() + self.item(items).pow(2).sum())

    def item_parts(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., E) each: item id, mean genre, year embeddings."""
        genre_ids = self.item_genres[ids]  # ... x G
        genre_mask = (genre_ids > 0).unsqueeze(-1).float()
        genres = (self.genre(genre_ids) * genre_mask).sum(-2) / genre_mask.sum(-2).clamp(min=1.0)
        return self.item(ids), genres, self.year(self.item_years[ids])

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        item, genres, year = self.item_parts(batch["item"])
        target = item + genres + year
        mask = batch["hist_items"] > 0
        history = sum(self.item_parts(batch["hist_items"])) + self.reaction(batch["hist_labels"])
        weights = mask.unsqueeze(-1).float()
        pooled = (history * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        users = batch["user"] if self.user_ids else torch.zeros_like(batch["user"])
        fields = [self.user(users), item, genres, year, pooled]
        stacked = torch.stack(fields, dim=1)
        if self.connector is not None:
            if "dense" not in batch:
                raise ValueError(
                    "the model was built with a dense input (dense_dim > 0) but the batch has no 'dense' vector"
                )
            stacked = torch.cat([stacked, self.connector(batch["dense"])], dim=1)
        return {"fields": stacked, "target": target, "history": history, "mask": mask}
