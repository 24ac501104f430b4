"""GroupLens MovieLens-1M raw files, and CoLLM's recipe for building its splits from them.

`ratings.dat` (UserID::MovieID::Rating::Timestamp) and `movies.dat` (MovieID::Title::Genres,
latin-1). The recipe (shared/data/README.md, section 3): month slots counted from the first
rating's month; train = slots 14-23, valid = 24-28, test = 29-33, the rest dropped; label =
rating >= 4; rows ordered by (user, timestamp) with ties ordered by the position of the item's
first rating in ratings.dat (what CoLLM's pandas produced); users renumbered by ascending raw id,
items by first appearance in that order, 0 kept for padding.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.data.schema import first_bad_row, plain
from trackrec.errors import DataError

ML1M_FOLDER = "ml-1m"
SLOT_SPLITS = {"train": range(14, 24), "valid": range(24, 29), "test": range(29, 34)}


def _read_dat(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise DataError(str(path), "file not found")
    rows = []
    with open(path, encoding="latin-1") as handle:
        for line_no, line in enumerate(handle):
            parts = line.rstrip("\n").split("::")
            if len(parts) != len(columns):
                raise DataError(
                    str(path), f"expected {len(columns)} '::'-separated fields {columns}, got {len(parts)}", row=line_no
                )
            rows.append(parts)
    return pd.DataFrame(rows, columns=columns)


def read_movies(path: Path) -> pd.DataFrame:
    """movies.dat as movie_id, title, genres (list)."""
    movies = _read_dat(Path(path), ["movie_id", "title", "genres"])
    movies["movie_id"] = movies["movie_id"].astype("int64")
    movies["genres"] = movies["genres"].str.split("|")
    return movies


def read_ratings(path: Path) -> pd.DataFrame:
    ratings = _read_dat(Path(path), ["user", "movie_id", "rating", "timestamp"])
    for column in ratings.columns:
        values = pd.to_numeric(ratings[column], errors="coerce")
        if values.isna().any():
            row = first_bad_row(values.isna().to_numpy())
            raise DataError(str(path), f"not an integer: {plain(ratings[column].iloc[row])!r}", row=row, field=column)
        ratings[column] = values.astype("int64")
    return ratings


def collm_recipe_events(ratings: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    """Apply CoLLM's ML-1M recipe to raw ratings; return the event log in CoLLM's order."""
    first_position = ratings.drop_duplicates("movie_id").reset_index(drop=True)
    first_position = pd.Series(first_position.index, index=first_position["movie_id"])
    frame = ratings.merge(movies[["movie_id", "title"]], on="movie_id", how="inner")
    when = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    slot = (when.dt.year - 2000) * 12 + when.dt.month
    frame["slot"] = slot - slot.min()
    frame["split"] = None
    for split, slots in SLOT_SPLITS.items():
        frame.loc[frame["slot"].isin(slots), "split"] = split
    frame = frame[frame["split"].notna()].copy()
    frame["tie"] = frame["movie_id"].map(first_position)
    frame = frame.sort_values(["user", "timestamp", "tie"], kind="stable").reset_index(drop=True)
    users = {raw: new for new, raw in enumerate(sorted(frame["user"].unique()), start=1)}
    items = {raw: new for new, raw in enumerate(frame["movie_id"].unique(), start=1)}
    return pd.DataFrame(
        {
            "user_id": frame["user"].map(users).astype("int64"),
            "item_id": frame["movie_id"].map(items).astype("int64"),
            "title": frame["title"],
            "label": (frame["rating"] >= 4).astype("int8"),
            "rating": frame["rating"].astype("float64"),
            "timestamp": frame["timestamp"].astype("int64"),
            "split": frame["split"],
            "raw_item_id": frame["movie_id"].astype("int64"),
        }
    )
