"""Checks on the licensed CoLLM ML-1M files; skipped with a reason where they are absent."""

from tests.synthetic import sample_rows
from trackrec.data.collm import collm_events, collm_stats, read_collm
from trackrec.data.config import HistoryMode


def test_table1_counts(real_data):
    stats = collm_stats(read_collm(real_data))
    assert (stats["train_rows"], stats["test_rows"], stats["users"], stats["items"]) == (33_891, 7_331, 839, 3_256)


def test_rebuilt_liked_history_equals_collm_his(real_data):
    """Our event order reproduces CoLLM's own `his` lists row for row, ties included."""
    raw = read_collm(real_data)
    samples = sample_rows(collm_events(raw), HistoryMode.LIKED, max_len=1000)
    for split, frame in raw.items():
        rebuilt = [list(h) for h in samples[split]["history_item_ids"]]
        # Samples come out in (user, time) order; CoLLM's files are in the same order.
        assert rebuilt == [h[1:] for h in frame.sort_values(["uid", "timestamp", "row_index"], kind="stable")["his"]]
