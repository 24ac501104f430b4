import gzip
import json

import pytest

from tests.synthetic import sample_rows, write_collm
from trackrec.data.collm import collm_events, collm_stats, read_collm, split_file
from trackrec.data.config import DataConfig, HistoryMode
from trackrec.data.dataset import Dataset
from trackrec.data.sources import build_dataset
from trackrec.errors import DataError
from trackrec.stages.prepare_data import prepare_data


def row(uid, iid, label, ts, his, row_index, title=None):
    titles = {0: ""} | {i: f"T{i} (1999)" for i in range(1, 10)}
    return {
        "uid": uid,
        "iid": iid,
        "label": label,
        "timestamp": ts,
        "his": his,
        "his_title": [titles[i] for i in his],
        "title": title or titles[iid],
        "not_cold": 1,
        "row_index": row_index,
    }


@pytest.fixture
def hand_root(tmp_path):
    """User 1 likes 1, dislikes 2 (same second as 3, which comes later in the file), likes 3;
    then 4 in valid and 5 in test. User 2 dislikes 1, then likes 2 in test."""
    splits = {
        "train": [
            row(1, 1, 1, 10, [0], 0),
            row(1, 2, 0, 20, [0, 1], 1),
            row(1, 3, 1, 20, [0, 1], 2),
            row(2, 1, 0, 15, [0], 3),
        ],
        "valid": [row(1, 4, 0, 30, [0, 1, 3], 0)],
        "test": [row(1, 5, 1, 40, [0, 1, 3], 0), row(2, 2, 1, 41, [0], 1)],
    }
    return write_collm(tmp_path / "data", splits, n_items=9)


def test_full_history_rebuilt_across_splits_in_order(hand_root):
    samples = sample_rows(collm_events(read_collm(hand_root)), HistoryMode.FULL, max_len=50)
    test_user1 = samples["test"].iloc[0]
    assert list(test_user1["history_item_ids"]) == [1, 2, 3, 4]
    assert list(test_user1["history_labels"]) == [1, 0, 1, 0]
    assert list(test_user1["history_titles"]) == ["T1 (1999)", "T2 (1999)", "T3 (1999)", "T4 (1999)"]
    assert list(samples["test"].iloc[1]["history_item_ids"]) == [1]  # user 2 disliked item 1
    assert list(samples["train"]["history_item_ids"].map(len)) == [0, 1, 2, 0]


def test_liked_history_matches_collm_his(hand_root):
    raw = read_collm(hand_root)
    samples = sample_rows(collm_events(raw), HistoryMode.LIKED, max_len=50)
    for split, frame in raw.items():
        assert [list(h) for h in samples[split]["history_item_ids"]] == [h[1:] for h in frame["his"]]


def test_max_history_keeps_most_recent(hand_root):
    samples = sample_rows(collm_events(read_collm(hand_root)), HistoryMode.FULL, max_len=2)
    assert list(samples["test"].iloc[0]["history_item_ids"]) == [3, 4]


def test_item_table_joins_genres_by_title(collm_root):
    dataset = build_dataset(DataConfig(root=str(collm_root)))
    assert (dataset.items["genres"].map(len) == 2).all()
    assert dataset.items["year"].between(1960, 1999).all()


def test_stats_count_padding(collm_root):
    stats = collm_stats(read_collm(collm_root))
    assert stats["users"] == 13 and stats["train_rows"] == 12 * 18


def rewrite_split(root, split, edit):
    path = split_file(root, split)
    rows = [json.loads(line) for line in gzip.open(path, "rt")]
    edit(rows)
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda rows: [r.pop("label") for r in rows], r"field 'label': missing column"),
        (lambda rows: rows[3].update(label=2), r"row 3, field 'label': must be 0 or 1, got 2"),
        (
            lambda rows: rows[5].update(his=[], his_title=[]),
            r"row 5, field 'his': history must be a list starting with the pad 0",
        ),
        (lambda rows: rows[5].update(his="1,2"), r"row 5, field 'his'"),
        (lambda rows: rows[6].update(his_title=["x"]), r"row 6, field 'his_title': must be a list as long as 'his'"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(collm_root, tmp_path, edit, expected):
    path = rewrite_split(collm_root, "valid", edit)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=expected) as info:
        prepare_data(DataConfig(root=str(collm_root)), out)
    assert str(path) in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_rerun_after_failure_works(collm_root, tmp_path):
    out = tmp_path / "out"
    rows = {}
    rewrite_split(collm_root, "test", lambda r: (rows.setdefault("orig", [dict(x) for x in r]), r[0].update(label=7)))
    with pytest.raises(DataError):
        prepare_data(DataConfig(root=str(collm_root)), out)
    rewrite_split(collm_root, "test", lambda r: r.__setitem__(slice(None), rows["orig"]))
    prepare_data(DataConfig(root=str(collm_root)), out)
    assert len(Dataset.open(out).samples("test")) == len(rows["orig"])


def test_missing_data_folder_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="TRACKREC_DATA_DIR"):
        read_collm(tmp_path)


def test_dataset_roundtrip(prepared):
    dataset = Dataset.open(prepared)
    assert set(dataset.samples()["split"]) == {"train", "valid", "test"}
    assert dataset.meta["rows"] == {split: len(dataset.samples(split)) for split in ("train", "valid", "test")}
    assert dataset.n_items == 41
