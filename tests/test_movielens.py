import pytest

from tests.synthetic import split_rows
from trackrec.data.config import DataConfig
from trackrec.data.sources import build_dataset
from trackrec.errors import DataError

# 2000-04 anchors slot 0; then train (2001-06), valid (2002-04), test (2002-09), dropped (2003-02).
RATINGS = """\
9::30::5::955756800
7::10::4::992563200
5::20::2::992563300
5::10::5::992563300
5::30::3::1018828800
7::20::5::1032048000
5::10::1::1045267200
"""
MOVIES = "10::Ten (1990)::Drama\n20::Twenty (1991)::Comedy|Drama\n30::Thirty, The (1992)::Horror\n"


@pytest.fixture
def ml1m_root(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text(RATINGS)
    (folder / "movies.dat").write_bytes(MOVIES.encode("latin-1"))
    return tmp_path


def test_collm_recipe_from_raw_ratings(ml1m_root):
    dataset = build_dataset(DataConfig(source="ml1m-raw", root=str(ml1m_root)))
    train, valid, test = (split_rows(dataset, s) for s in ("train", "valid", "test"))
    # Users renumbered by raw id (5 -> 1, 7 -> 2; 9 only rated in a dropped slot). Items by first
    # appearance after sorting: 10 -> 1, 20 -> 2, 30 -> 3. The tie at 992563300 follows the items'
    # first positions in ratings.dat (10 before 20), not the file order of the tied rows.
    assert list(zip(train["user_id"], train["target_item_id"], train["label"], strict=True)) == [
        (1, 1, 1),
        (1, 2, 0),
        (2, 1, 1),
    ]
    assert list(valid["history_item_ids"].iloc[0]) == [1, 2]
    assert list(valid["history_ratings"].iloc[0]) == [5.0, 2.0]
    assert list(valid["history_labels"].iloc[0]) == [1, 0]
    assert list(zip(test["user_id"], test["target_item_id"], strict=True)) == [(2, 2)]
    assert test["target_title"].iloc[0] == "Twenty (1991)"
    genres = dict(zip(dataset.items["item_id"], dataset.items["genres"].map(list), strict=True))
    assert genres == {1: ["Drama"], 2: ["Comedy", "Drama"], 3: ["Horror"]}


def test_liked_only_history_from_raw(ml1m_root):
    dataset = build_dataset(DataConfig(source="ml1m-raw", root=str(ml1m_root), history="liked"))
    assert list(split_rows(dataset, "valid")["history_item_ids"].iloc[0]) == [1]


def test_malformed_ratings_line_is_named(ml1m_root):
    (ml1m_root / "ml-1m" / "ratings.dat").write_text(RATINGS + "5::10::five::1018828900\n")
    with pytest.raises(DataError, match=r"ratings\.dat, row 7, field 'rating': not an integer: 'five'"):
        build_dataset(DataConfig(source="ml1m-raw", root=str(ml1m_root)))


def test_missing_ratings_file(tmp_path):
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "movies.dat").write_text(MOVIES)
    with pytest.raises(DataError, match=r"ratings\.dat: file not found"):
        build_dataset(DataConfig(source="ml1m-raw", root=str(tmp_path)))
