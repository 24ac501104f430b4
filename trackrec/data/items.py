"""The item table the CTR models read: item_id, title, genres (list), year (0 if unknown)."""

from __future__ import annotations

import numpy as np
import pandas as pd

ITEM_COLUMNS = ("item_id", "title", "genres", "year")
_YEAR = r"\((\d{4})\)\s*$"


def year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(_YEAR, expand=False), errors="coerce").fillna(0).astype("int64")


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
    items["genres"] = items["genres"].map(lambda g: list(g) if isinstance(g, (list, tuple, np.ndarray)) else [])
    items["title"] = items["title"].astype(str)
    items["year"] = year_from_title(items["title"])
    return items.loc[:, list(ITEM_COLUMNS)].sort_values("item_id").reset_index(drop=True)
