"""Turn canonical samples into the tensors every CTR backbone reads.

A batch is a dict:
  user        (B,)    user id (0 = unknown/padding)
  item        (B,)    target item id
  hist_items  (B, L)  last L history items, right-aligned, 0 = padding
  hist_labels (B, L)  1 disliked, 2 liked, 0 padding
  dense       (B, D)  optional per-user vector (the RecCoT embedding)
Item side information (genres, year) lives in the model as lookup tables built from the item table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from trackrec.errors import DataError
from trackrec.features.vectors import checked_vectors


@dataclass(frozen=True)
class FeatureSpec:
    """Sizes of every table a backbone embeds, and the item side information."""

    n_users: int
    n_items: int
    history_len: int
    item_genres: torch.Tensor  # (n_items, G) genre ids, 0 = padding
    item_years: torch.Tensor  # (n_items,) year ids, 0 = unknown
    dense_dim: int = 0

    @property
    def n_genres(self) -> int:
        return int(self.item_genres.max()) + 1

    @property
    def n_years(self) -> int:
        return int(self.item_years.max()) + 1


def item_side_tables(items: pd.DataFrame, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Genre id matrix and year id vector indexed by item id."""
    vocab = {g: i for i, g in enumerate(sorted({g for gs in items["genres"] for g in gs}), start=1)}
    width = max(1, max((len(gs) for gs in items["genres"]), default=1))
    genres = np.zeros((n_items, width), dtype=np.int64)
    years = np.zeros(n_items, dtype=np.int64)
    year_vocab = {y: i for i, y in enumerate(sorted(set(items["year"]) - {0}), start=1)}
    for item_id, item_genres, year in zip(items["item_id"], items["genres"], items["year"], strict=True):
        genres[item_id, : len(item_genres)] = [vocab[g] for g in item_genres]
        years[item_id] = year_vocab.get(year, 0)
    return torch.from_numpy(genres), torch.from_numpy(years)


def _right_aligned(lists: pd.Series, length: int, offset: int = 0) -> np.ndarray:
    """Last `length` entries of each list, right-aligned in a zero-padded matrix (+offset where set)."""
    out = np.zeros((len(lists), length), dtype=np.int64)
    for row, values in enumerate(lists):
        tail = np.asarray(values[-length:], dtype=np.int64) if len(values) else np.empty(0, np.int64)
        if tail.size:
            out[row, length - tail.size :] = tail + offset
    return out


def user_vector_matrix(vectors: pd.DataFrame, n_users: int, dense_dim: int, source: str) -> np.ndarray:
    """(n_users, D) matrix from a frame of user_id + embedding; users without a row read zeros."""
    rows = checked_vectors(vectors, dense_dim, source)
    matrix = np.zeros((n_users, dense_dim), dtype=np.float32)
    for row, user in enumerate(vectors["user_id"]):
        if not 0 < user < n_users:
            raise DataError(
                source, f"user_id {user} is outside the dataset (1..{n_users - 1})", row=row, field="user_id"
            )
        matrix[user] = rows[row]
    return matrix


def samples_to_tensors(
    samples: pd.DataFrame, history_len: int, user_vectors: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    batch = {
        "user": torch.from_numpy(samples["user_id"].to_numpy(np.int64)),
        "item": torch.from_numpy(samples["target_item_id"].to_numpy(np.int64)),
        "hist_items": torch.from_numpy(_right_aligned(samples["history_item_ids"], history_len)),
        "hist_labels": torch.from_numpy(_right_aligned(samples["history_labels"], history_len, offset=1)),
        "label": torch.from_numpy(samples["label"].to_numpy(np.float32)),
    }
    if user_vectors is not None:
        batch["dense"] = torch.from_numpy(user_vectors[samples["user_id"].to_numpy()])
    return batch
