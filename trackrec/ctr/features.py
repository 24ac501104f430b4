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


def right_aligned(lists, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, present): the last `length` entries of each list, right-aligned, zero-padded."""
    out = np.zeros((len(lists), length), dtype=np.int64)
    present = np.zeros((len(lists), length), dtype=bool)
    for row, values in enumerate(lists):
        tail = np.asarray(values[-length:], dtype=np.int64) if len(values) else np.empty(0, np.int64)
        if tail.size:
            out[row, length - tail.size :] = tail
            present[row, length - tail.size :] = True
    return out, present


def user_vector_matrix(ids: np.ndarray, rows: np.ndarray, n_users: int, source: str) -> np.ndarray:
    """(n_users, D) matrix of checked vectors (`rows`, one per id); users without a row read zeros."""
    outside = ~((ids > 0) & (ids < n_users))
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            source, f"user_id {ids[row]} is outside the dataset (1..{n_users - 1})", row=row, field="user_id"
        )
    matrix = np.zeros((n_users, rows.shape[1]), dtype=np.float32)
    matrix[ids] = rows
    return matrix


def batch_of(
    users: np.ndarray,
    items: np.ndarray,
    labels: np.ndarray,
    hist_items: np.ndarray,
    hist_labels: np.ndarray,
    user_vectors: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """A batch from arrays (hist_labels: 1 liked, 0 disliked, -1 padding); the user's vector is looked
    up here, per batch, never copied into every sample."""
    batch = {
        "user": torch.from_numpy(np.asarray(users, np.int64)),
        "item": torch.from_numpy(np.asarray(items, np.int64)),
        "hist_items": torch.from_numpy(np.asarray(hist_items, np.int64)),
        "hist_labels": torch.from_numpy(np.asarray(hist_labels, np.int64) + 1),
        "label": torch.from_numpy(np.asarray(labels, np.float32)),
    }
    if user_vectors is not None:
        batch["dense"] = torch.from_numpy(user_vectors[batch["user"].numpy()])
    return batch


def rows_to_batch(rows: pd.DataFrame, history_len: int, user_vectors: np.ndarray | None = None) -> dict:
    """A batch from sample rows whose histories are lists (a serving request, LLM-side rows)."""
    hist_items, present = right_aligned(rows["history_item_ids"], history_len)
    hist_labels, _ = right_aligned(rows["history_labels"], history_len)
    return batch_of(
        rows["user_id"].to_numpy(),
        rows["target_item_id"].to_numpy(),
        rows["label"].to_numpy(),
        hist_items,
        np.where(present, hist_labels, -1),
        user_vectors,
    )
