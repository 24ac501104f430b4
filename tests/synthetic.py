"""Small generated datasets in the real file formats, so tests need none of the licensed files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

GENRES = ("Action", "Comedy", "Drama", "Horror")
SPLIT_FILES = {"train": "train_ood2", "valid": "valid_ood2", "test": "test_ood2"}


def movie_titles(n_items: int) -> dict[int, str]:
    return {i: f"Movie {i} ({1960 + i % 40})" for i in range(1, n_items + 1)}


def item_genre(item: int) -> str:
    return GENRES[item % len(GENRES)]


def write_movies(path: Path, n_items: int) -> None:
    """movies.dat (MovieID::Title::Genres, latin-1), ids equal to the CoLLM item ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{i}::{title}::{item_genre(i)}|Drama" for i, title in movie_titles(n_items).items()]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


def collm_rows(n_users: int = 12, n_items: int = 40, per_user: int = 30, seed: int = 0) -> dict[str, list[dict]]:
    """CoLLM-format rows: each user likes one genre (label 1 with p=0.85 on it, 0.15 off it)."""
    rng = np.random.default_rng(seed)
    titles = movie_titles(n_items)
    splits = {name: [] for name in SPLIT_FILES}
    for uid in range(1, n_users + 1):
        favourite = GENRES[uid % len(GENRES)]
        his, his_title = [0], [""]
        for step in range(per_user):
            iid = int(rng.integers(1, n_items + 1))
            label = int(rng.random() < (0.85 if item_genre(iid) == favourite else 0.15))
            split = "train" if step < per_user * 0.6 else "valid" if step < per_user * 0.8 else "test"
            # Unix seconds; each user's events of a split on a day of their own (some users are quiet
            # on the log's last day) ten minutes apart
            ts = (
                {"train": 1_000_000_000, "valid": 1_100_000_000, "test": 1_200_000_000}[split]
                + uid * 86_400
                + step * 600
            )
            splits[split].append(
                {
                    "uid": uid,
                    "iid": iid,
                    "label": label,
                    "timestamp": ts,
                    "his": list(his),
                    "his_title": list(his_title),
                    "title": titles[iid],
                    "not_cold": 1,
                }
            )
            if label:
                his.append(iid)
                his_title.append(titles[iid])
    for rows in splits.values():
        for index, row in enumerate(rows):
            row["row_index"] = index
    return splits


def write_collm(root: Path, splits: dict[str, list[dict]], n_items: int = 40) -> Path:
    """Write rows as collm-ml1m/jsonl/*.jsonl.gz plus ml-1m/movies.dat under `root`."""
    folder = root / "collm-ml1m" / "jsonl"
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        with gzip.open(folder / f"{SPLIT_FILES[split]}.jsonl.gz", "wt") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
    write_movies(root / "ml-1m" / "movies.dat", n_items)
    return root


def sample_rows(events, mode, max_len: int) -> dict:
    """Split name -> sample rows with list histories, built from an event log as prepare_data does."""
    from trackrec.data.dataset import Dataset
    from trackrec.data.history import samples_from_events
    from trackrec.data.items import item_table
    from trackrec.data.schema import SPLITS

    samples, history = samples_from_events(events, mode, max_len)
    dataset = Dataset.built(samples, history, item_table(events), {}, max_len, "events")
    return {split: split_rows(dataset, split) for split in SPLITS}


def split_rows(dataset, split: str):
    """A split's sample rows with list histories (what the LLM stages read)."""
    return dataset.with_histories(dataset.samples(split))
