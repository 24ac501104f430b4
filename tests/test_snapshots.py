"""RecCoT snapshots in time: what each one summarises, and which one a sample may read."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackrec.data.dataset import META_FILE, Dataset
from trackrec.data.snapshots import DAY, AsOfIndex, SnapshotConfig
from trackrec.stages.summarize import active_users, dataset_snapshots


def test_a_sample_reads_the_newest_snapshot_from_strictly_before_it():
    """User 7 has snapshots at t-1, t and t+1: a sample at t reads t-1's (the one at t is not known
    yet when the sample happens), at t+2 it reads t+1's, at t-1 none; user 8 has none."""
    t = 1_000_000
    users, as_of = np.array([7, 7, 7, 9]), np.array([t - 1, t, t + 1, t - 5])
    rows = AsOfIndex(users, as_of).rows(np.array([7, 7, 7, 8, 9]), np.array([t, t + 2, t - 1, t, t]))
    assert rows.tolist() == [0, 2, -1, -1, 3]


def test_a_ttl_keeps_an_old_snapshot_from_a_later_sample():
    rows = AsOfIndex(np.array([1]), np.array([0])).rows(np.array([1, 1]), np.array([DAY, 3 * DAY]), ttl_s=2 * DAY)
    assert rows.tolist() == [0, -1]


def test_each_snapshot_summarises_exactly_the_users_events_up_to_its_time(prepared):
    """Its history is the user's events at or before as_of (the latest max_history), nothing later;
    a user gets a snapshot only where their history grew; snapshot times include now."""
    dataset = Dataset.open(prepared)
    plan = dataset_snapshots(dataset, SnapshotConfig(every_days=3))
    samples = dataset.with_histories(dataset.samples())
    snapshots = dataset.with_histories(plan)
    assert (plan.as_of == dataset.meta["latest_timestamp"]).any()
    for user, mine in snapshots.groupby("user_id"):
        events = samples[samples.user_id == user]
        for row in mine.itertuples():
            known = events[events.timestamp <= row.as_of]
            assert list(row.history_item_ids) == known.target_item_id.tolist()[-50:]
            assert list(row.history_labels) == known.label.tolist()[-50:]
        assert mine.history_end.is_monotonic_increasing and mine.history_end.is_unique  # only where it grew
    assert plan.groupby("user_id").size().max() > 1


def test_the_refresh_summarises_a_grown_log_as_of_now(prepared, tmp_path):
    """A refresh (active users, as of now) on a log that grew: the new snapshot holds the new events,
    and the grid snapshots of the old log are unchanged in the new one (already summarised)."""
    dataset = Dataset.open(prepared)
    samples = dataset.samples()
    latest = int(samples.timestamp.max())
    user = int(samples.user_id.iloc[0])
    history = dataset.history_rows(0, dataset.meta["tables"]["history"]["rows"])
    last = samples[samples.user_id == user].iloc[-1]
    end = int(samples[samples.user_id == user].history_end.max()) + 1
    new = pd.DataFrame(
        {
            "user_id": [user] * 2,
            "target_item_id": [3, 4],
            "label": np.array([1, 0], np.int8),
            "timestamp": [latest + DAY, latest + 2 * DAY],
            "split": pd.Categorical(["test", "test"], categories=["train", "valid", "test"]),
            "history_start": [max(end - 50, int(last.history_start)), max(end + 1 - 50, int(last.history_start))],
            "history_end": [end, end + 1],
        }
    )
    row = samples.index[samples.user_id == user][-1] + 1
    grown_samples = pd.concat([samples.iloc[:row], new, samples.iloc[row:]], ignore_index=True)
    shift = grown_samples.index >= row + 2
    grown_samples.loc[shift, ["history_start", "history_end"]] += 2
    grown_history = pd.concat(
        [history.iloc[:end], pd.DataFrame({"item_id": [3, 4], "label": np.array([1, 0], np.int8), "rating": np.nan})]
        + [history.iloc[end:]],
        ignore_index=True,
    ).astype({"rating": "float32"})
    Dataset.built(grown_samples, grown_history, dataset.items, dataset.meta, 50, "grown").save(tmp_path / "grown")
    grown = Dataset.open(tmp_path / "grown")

    now = dataset_snapshots(grown, SnapshotConfig(), now_only=True)
    now = now[now.user_id.isin(active_users(grown, 1))]  # what summarize keeps: the active users
    assert now.as_of.unique().tolist() == [latest + 2 * DAY] and now.user_id.tolist() == [user]
    refreshed = grown.with_histories(now).iloc[0]
    assert refreshed.history_item_ids[-2:] == [3, 4] and refreshed.history_labels[-2:] == [1, 0]
    before = dataset_snapshots(dataset, SnapshotConfig(every_days=3, at_splits=False))
    after = dataset_snapshots(grown, SnapshotConfig(every_days=3, at_splits=False))
    old = before[before.as_of < latest].drop(columns=["history_start", "history_end"])
    kept = after[after.as_of < latest].drop(columns=["history_start", "history_end"])
    pd.testing.assert_frame_equal(old.reset_index(drop=True), kept.reset_index(drop=True))


def test_timestamps_in_another_unit_are_refused_when_written_and_when_opened(prepared, tmp_path):
    """CoLLM's seconds once became nanoseconds (pandas read the column as datetimes): a dataset of
    such times is not written, and one written before is not read."""
    import json

    import pytest

    from trackrec.errors import DataError

    dataset = Dataset.open(prepared)
    samples = dataset.samples()
    history = dataset.history_rows(0, dataset.meta["tables"]["history"]["rows"])
    with pytest.raises(DataError, match="samples, row 0, field 'timestamp': must be whole Unix seconds between 1970"):
        Dataset.built(samples.assign(timestamp=samples.timestamp * 10**9), history, dataset.items, {}, 50, "x")
    meta = json.loads((prepared / META_FILE).read_text())
    (prepared / META_FILE).write_text(json.dumps(meta | {"latest_timestamp": meta["latest_timestamp"] * 10**9}))
    with pytest.raises(DataError, match="is not Unix seconds; prepare it again"):
        Dataset.open(prepared)
