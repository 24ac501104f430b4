"""Turn canonical samples into the tensors every CTR backbone reads.

A batch is a dict:
  user        (B,)    user id (0 = unknown/padding)
  item        (B,)    target item id
  hist_items  (B, L)  last L history items, right-aligned, 0 = padding
  hist_labels (B, L)  1 disliked, 2 liked, 0 padding
  dense       (B, D)  optional RecCoT vector: the user's newest snapshot from before the sample
  conversion  (B,)    optional post-click conversion label (a joint CTR x CVR model trains on it)
Item side information (genres, year) lives in the model as lookup tables built from the item table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class FeatureSpec:
    """Sizes of every table a backbone embeds, and the item side information."""

    n_users: int
    n_items: int
    history_len: int
    item_genres: torch.Tensor  # (n_items, G) genre ids, 0 = padding
    item_years: torch.Tensor  # (n_items,) year ids, 0 = unknown
    dense_dim: int = 0
    user_ids: bool = True  # the user-id field; off: it reads the padding row for everyone

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


def batch_of(
    users: np.ndarray,
    items: np.ndarray,
    labels: np.ndarray,
    hist_items: np.ndarray,
    hist_labels: np.ndarray,
    dense: np.ndarray | None = None,
    conversion: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """A batch from arrays (hist_labels: 1 liked, 0 disliked, -1 padding; dense: each sample's RecCoT
    vector, the snapshot it may read). Arrays may be views in any order; each is copied contiguous,
    since torch refuses negative strides (a reversed frame's columns)."""
    batch = {
        "user": _tensor(users, np.int64),
        "item": _tensor(items, np.int64),
        "hist_items": _tensor(hist_items, np.int64),
        "hist_labels": _tensor(np.asarray(hist_labels, np.int64) + 1, np.int64),
        "label": _tensor(labels, np.float32),
    }
    if dense is not None:
        batch["dense"] = _tensor(dense, np.float32)
    if conversion is not None:
        batch["conversion"] = _tensor(conversion, np.float32)
    return batch


def _tensor(values, dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype))


def rows_to_batch(rows: pd.DataFrame, history_len: int, dense: np.ndarray | None = None) -> dict:
    """A batch from sample rows whose histories are lists (a serving request, LLM-side rows); dense:
    each row's vector."""
    hist_items, present = right_aligned(rows["history_item_ids"], history_len)
    hist_labels, _ = right_aligned(rows["history_labels"], history_len)
    return batch_of(
        rows["user_id"].to_numpy(),
        rows["target_item_id"].to_numpy(),
        rows["label"].to_numpy(),
        hist_items,
        np.where(present, hist_labels, -1),
        dense,
    )
