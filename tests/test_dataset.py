"""A prepared dataset read in parts: a shard's users, a run of history rows, batches streamed."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import trackrec.data.dataset as dataset_module
from tests.synthetic import collm_rows, split_rows, write_collm
from trackrec.ctr.stream import SplitStream
from trackrec.data.config import DataConfig
from trackrec.data.dataset import Dataset
from trackrec.data.snapshots import SnapshotConfig
from trackrec.stages.prepare_data import prepare_data
from trackrec.stages.shards import Shard
from trackrec.stages.summarize import dataset_snapshots


@pytest.fixture
def grouped(tmp_path, monkeypatch):
    """40 users x 30 events in row groups of 64 rows: a user range spans a few groups."""
    monkeypatch.setattr(dataset_module, "ROW_GROUP", 64)
    root = write_collm(tmp_path / "data", collm_rows(n_users=40, per_user=30))
    prepare_data(DataConfig(root=str(root)), tmp_path / "prepared")
    return Dataset.open(tmp_path / "prepared")


def test_a_shard_reads_only_the_row_groups_of_its_users(grouped, monkeypatch):
    read = []
    original = pq.ParquetFile.read_row_groups

    def recording(self, groups, *args, **kwargs):
        read.append(list(groups))
        return original(self, groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", recording)
    everyone = grouped.samples()
    assert len(read[-1]) == 1200 // 64 + 1
    snapshots = []
    for index in range(4):
        low, high = Shard(index, 4).users(grouped.n_users)
        part = grouped.samples(users=(low, high))
        mine = everyone[(everyone.user_id >= low) & (everyone.user_id < high)].reset_index(drop=True)
        assert part.equals(mine)
        assert len(read[-1]) <= len(mine) // 64 + 2  # its own groups and at most one more at each edge
        snapshots.append(dataset_snapshots(grouped, SnapshotConfig(every_days=2), (low, high)))
    whole = dataset_snapshots(grouped, SnapshotConfig(every_days=2))
    assert pd.concat(snapshots, ignore_index=True).equals(whole)  # the shards' snapshots are the whole's


def test_streamed_batches_carry_each_samples_last_history_items(grouped):
    """The CTR stream's right-aligned history equals the tail of the list history the LLM reads."""
    rows = split_rows(grouped, "test")
    batches = list(SplitStream(grouped, "test", history_len=5, size=7))
    items = np.concatenate([b["hist_items"].numpy() for b in batches])
    labels = np.concatenate([b["hist_labels"].numpy() for b in batches])
    assert len(items) == len(rows) > 64  # across several row groups
    for row, (got, reaction) in enumerate(zip(items, labels, strict=True)):
        tail, tail_labels = rows.history_item_ids[row][-5:], rows.history_labels[row][-5:]
        assert got[5 - len(tail) :].tolist() == tail and not got[: 5 - len(tail)].any()
        assert (reaction[5 - len(tail) :] - 1).tolist() == tail_labels  # 1 disliked, 2 liked, 0 padding


def test_shuffled_training_batches_hold_every_train_sample_once(grouped):
    import torch

    stream = SplitStream(grouped, "train", history_len=5, size=16, window=3)
    seen = np.concatenate([b["item"].numpy() for b in stream.shuffled(torch.Generator().manual_seed(0))])
    in_order = np.concatenate([b["item"].numpy() for b in stream])
    assert len(seen) == len(in_order) == grouped.meta["rows"]["train"]
    assert sorted(seen) == sorted(in_order) and not np.array_equal(seen, in_order)
