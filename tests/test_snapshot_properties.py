"""Properties of the point-in-time pieces over their whole input space: the as-of join against a
loop, each snapshot's history against the events, every as_of value and every generator tag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackrec.data.config import HistoryMode
from trackrec.data.history import samples_from_events
from trackrec.data.schema import SECONDS_RANGE
from trackrec.data.snapshots import AsOfIndex, plan_snapshots
from trackrec.errors import ConfigError, DataError
from trackrec.features.generators import generator_uri
from trackrec.features.store import StoreConfig
from trackrec.features.vectors import checked_as_of

FAST = settings(max_examples=150, deadline=None)
TIME = st.integers(0, 40)  # a small range: many ties between snapshot and sample times


@FAST
@given(
    snapshots=st.lists(st.tuples(st.integers(1, 4), TIME), unique=True, max_size=12),
    samples=st.lists(st.tuples(st.integers(1, 5), st.integers(-5, 50)), min_size=1, max_size=20),
    ttl=st.one_of(st.none(), st.integers(0, 20)),
)
def test_the_as_of_join_picks_what_a_loop_picks(snapshots, samples, ttl):
    users = np.array([u for u, _ in snapshots], np.int64)
    as_of = np.array([t for _, t in snapshots], np.int64)
    got = AsOfIndex(users, as_of).rows(np.array([u for u, _ in samples]), np.array([t for _, t in samples]), ttl)
    for (user, time), row in zip(samples, got, strict=True):
        earlier = [i for i, (u, t) in enumerate(snapshots) if u == user and t < time]
        best = max(earlier, key=lambda i: snapshots[i][1], default=-1)
        if best >= 0 and ttl is not None and time - snapshots[best][1] > ttl:
            best = -1
        assert row == best


@FAST
@given(
    events=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 30), st.booleans()), min_size=1, max_size=40),
    times=st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True),
    liked_only=st.booleans(),
    max_len=st.integers(1, 6),
)
def test_each_snapshot_holds_exactly_the_users_latest_events_up_to_its_time(events, times, liked_only, max_len):
    frame = pd.DataFrame(events, columns=["user_id", "timestamp", "label"]).sort_values(
        ["user_id", "timestamp"], kind="stable"
    )
    frame = frame.assign(item_id=np.arange(1, len(frame) + 1), rating=np.nan, split="train").reset_index(drop=True)
    mode = HistoryMode.LIKED if liked_only else HistoryMode.FULL
    samples, history = samples_from_events(frame, mode, max_len)
    grid = np.unique(np.array([*times, frame.timestamp.max()]))  # the last time is now: it covers every event
    plan = plan_snapshots(samples, grid, liked_only, max_len)
    for row in plan.itertuples():
        mine = frame[(frame.user_id == row.user_id) & (frame.timestamp <= row.as_of)]
        shown = mine[mine.label] if liked_only else mine
        assert history.item_id.iloc[row.history_start : row.history_end].tolist() == shown.item_id.tolist()[-max_len:]
    assert not plan.duplicated(["user_id", "history_end"]).any()  # a summary only where the history grew
    assert set(plan.user_id) == set(frame[frame.label].user_id if liked_only else frame.user_id)


VALUES = st.one_of(
    st.integers(-(2**40), 2**62), st.floats(allow_nan=True, allow_infinity=True), st.none(), st.booleans()
)


@FAST
@given(st.lists(VALUES, min_size=1, max_size=8))
def test_every_as_of_is_whole_unix_seconds_or_named_by_its_row(values):
    """Whatever a snapshot table holds in as_of (ints of any size, floats, NaN, None, bools), the
    check returns its seconds or names the first bad row; nothing else escapes."""
    series = pd.Series(values)
    low, high = SECONDS_RANGE

    def fine(value):
        return isinstance(value, int | float) and not isinstance(value, bool) and low <= value < high and value % 1 == 0

    if all(fine(v) for v in values) and pd.api.types.is_numeric_dtype(series) and series.dtype != bool:
        np.testing.assert_array_equal(checked_as_of(series, "t.parquet"), np.array(values, np.int64))
    else:
        with pytest.raises(DataError, match="t.parquet.*as_of"):
            checked_as_of(series, "t.parquet", first_row=10)


@FAST
@given(st.text(max_size=40))
def test_a_generator_tag_only_ever_names_a_folder_in_the_stores_offline_root(tag):
    """The tag is registry content: any string is either refused or a version folder of the
    deployment's own offline root, never another bucket, host or path."""
    config = StoreConfig(repo="/r", offline="s3://features/reccot")
    try:
        uri = generator_uri(config, tag)
    except ConfigError:
        return
    assert uri == f"s3://features/reccot/generators/{tag}" and "/" not in tag and ".." not in tag
