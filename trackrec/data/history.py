"""Turn an ordered event log into samples, each carrying the user's history before it."""

from __future__ import annotations

from collections import deque
from enum import StrEnum

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from trackrec.data.schema import SAMPLE_COLUMNS

EVENT_COLUMNS = ("user_id", "item_id", "title", "label", "rating", "timestamp", "split")


class HistoryMode(StrEnum):
    FULL = "full"  # every earlier interaction, liked and disliked, with its label
    LIKED = "liked"  # earlier liked items only (CoLLM's `his`)


def samples_from_events(events: pd.DataFrame, mode: HistoryMode, max_len: int) -> dict[str, pd.DataFrame]:
    """Build samples per split from events already sorted in the source's canonical order.

    Each event becomes a sample whose history holds the user's earlier events (all of them, or only
    the liked ones), the most recent `max_len` kept. Histories cross split borders: a test event
    sees earlier train and valid events of the same user, as in CoLLM.
    """
    mode = HistoryMode(mode)
    has_ratings = events["rating"].notna().any()
    columns = {c: events[c].to_numpy() for c in EVENT_COLUMNS}
    rows = {c: [] for c in SAMPLE_COLUMNS}
    history: dict[int, deque] = {}
    for i in tqdm(range(len(events)), desc="histories", unit="event", mininterval=2, leave=False):
        user = int(columns["user_id"][i])
        past = history.setdefault(user, deque(maxlen=max_len))
        rows["user_id"].append(user)
        rows["history_item_ids"].append([p[0] for p in past])
        rows["history_titles"].append([p[1] for p in past])
        rows["history_labels"].append([p[2] for p in past])
        rows["history_ratings"].append([p[3] for p in past] if has_ratings else None)
        rows["target_item_id"].append(int(columns["item_id"][i]))
        rows["target_title"].append(str(columns["title"][i]))
        rows["label"].append(int(columns["label"][i]))
        rows["timestamp"].append(int(columns["timestamp"][i]))
        if mode is HistoryMode.FULL or columns["label"][i] == 1:
            rating = columns["rating"][i]
            past.append(
                (
                    int(columns["item_id"][i]),
                    str(columns["title"][i]),
                    int(columns["label"][i]),
                    None if pd.isna(rating) else float(rating),
                )
            )
    samples = pd.DataFrame(rows)
    samples["label"] = samples["label"].astype("int8")
    split = columns["split"]
    return {name: samples[split == name].reset_index(drop=True) for name in np.unique(split)}
