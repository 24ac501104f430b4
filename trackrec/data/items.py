"""The item table the CTR models read: item_id, title, genres (list), year (0 if unknown)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackrec.errors import DataError
from trackrec.inert import inert

ITEM_COLUMNS = ("item_id", "title", "genres", "year")
_YEAR = r"\((\d{4})\)\s*$"


def year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(_YEAR, expand=False), errors="coerce").fillna(0).astype("int64")


def genre_lists(values: pd.Series, source: str, rows: np.ndarray | None = None) -> pd.Series:
    """Each value as a list of genre strings (missing: none); raises naming the first row (`rows`: each
    value's row in its source) holding anything else, a single string above all: it is not split,
    since its separator would be a guess, and dropping it would lose the item's genres unseen."""
    out = []
    for index, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append([])
        elif isinstance(value, (list, tuple, np.ndarray)) and all(isinstance(g, str) for g in value):
            out.append([str(g) for g in value])
        else:
            row = int(index if rows is None else rows[index])
            shown = inert(repr(value), 80)
            raise DataError(
                source, f"must be a list of strings, got {type(value).__name__} {shown}", row=row, field="genres"
            )
    return pd.Series(out, index=values.index, dtype=object)


def item_table(events: pd.DataFrame, metadata: pd.DataFrame | None = None, on: str = "title") -> pd.DataFrame:
    """One row per item seen in `events`, with genres joined from `metadata` on `on` where given.

    `metadata` has `on` and a `genres` list column; unmatched items get no genres.
    """
    items = events.drop_duplicates("item_id")[["item_id", "title", *([on] if on != "title" else [])]]
    if metadata is not None:
        items = items.merge(metadata[[on, "genres"]].drop_duplicates(on), on=on, how="left")
    elif "genres" in events.columns:
        items = items.merge(events.drop_duplicates("item_id")[["item_id", "genres"]], on="item_id")
    else:
        items["genres"] = None
    items["genres"] = genre_lists(items["genres"], "items")
    items["title"] = items["title"].astype(str)
    items["year"] = year_from_title(items["title"])
    return items.loc[:, list(ITEM_COLUMNS)].sort_values("item_id").reset_index(drop=True)
