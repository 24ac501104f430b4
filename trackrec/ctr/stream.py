"""Batches of one split streamed from a prepared dataset, a row group at a time.

Memory holds a window of row groups and the history rows they point at, never the whole table: it
does not grow with the number of samples. Training order: row groups in a random order, samples
shuffled within a window of `window` groups (the buffered shuffle of streaming loaders); for
MovieLens-sized data the window holds every group, so the order is a full shuffle.
"""

from __future__ import annotations

import numpy as np
import torch

from trackrec.ctr.features import batch_of
from trackrec.data.dataset import Dataset
from trackrec.data.snapshots import SnapshotVectors

ARRAYS = ("users", "items", "labels", "hist_items", "hist_labels", "vector_rows")
COLUMNS = ["user_id", "target_item_id", "label", "timestamp", "split", "history_start", "history_end"]


class SplitStream:
    def __init__(
        self,
        dataset: Dataset,
        split: str,
        history_len: int,
        size: int,
        vectors: SnapshotVectors | None = None,
        window: int = 8,
        conversions: bool = False,
    ):
        self.dataset, self.split, self.history_len, self.size = dataset, split, history_len, size
        self.vectors, self.window = vectors, window
        self.columns = [*COLUMNS, *["conversion"] * conversions]  # the CVR label: a joint model's batches

    def _load(self, index: int) -> dict[str, np.ndarray]:
        """One row group's samples of this split, histories gathered (compact dtypes)."""
        frame = self.dataset.sample_group(index, self.columns)
        frame = frame[(frame["split"] == self.split).to_numpy()]
        hist_items, hist_labels = self.dataset.history_matrix(frame, self.history_len)
        users = frame["user_id"].to_numpy(np.int64)
        vector_rows = (
            np.full(len(users), -1, np.int64)
            if self.vectors is None
            else self.vectors.rows_for(users, frame["timestamp"].to_numpy(np.int64))
        )
        return {
            "users": users,
            "items": frame["target_item_id"].to_numpy(np.int64),
            "labels": frame["label"].to_numpy(np.int8),
            "hist_items": hist_items.astype(np.int32),
            "hist_labels": hist_labels.astype(np.int8),
            "vector_rows": vector_rows,  # the snapshot each sample reads (point in time), -1: none
            **({"conversion": frame["conversion"].to_numpy(np.int8)} if "conversion" in frame else {}),
        }

    def _batches(self, arrays: dict[str, np.ndarray], order: np.ndarray):
        for start in range(0, len(order), self.size):
            index = order[start : start + self.size]
            dense = None if self.vectors is None else self.vectors.gather(arrays["vector_rows"][index])
            conversion = arrays["conversion"][index] if "conversion" in arrays else None
            yield batch_of(*(arrays[k][index] for k in ARRAYS[:-1]), dense, conversion)

    def __iter__(self):
        for index in range(self.dataset.sample_groups()):
            arrays = self._load(index)
            yield from self._batches(arrays, np.arange(len(arrays["labels"])))

    def shuffled(self, generator: torch.Generator):
        count = self.dataset.sample_groups()
        groups = torch.randperm(count, generator=generator).tolist() if count > 1 else [0]
        for start in range(0, count, self.window):
            parts = [self._load(i) for i in groups[start : start + self.window]]
            arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            yield from self._batches(arrays, torch.randperm(len(arrays["labels"]), generator=generator).numpy())
