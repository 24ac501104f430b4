"""How each source of the data section (trackrec/data/config.py) becomes a Dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.config import config_to_dict
from trackrec.data.behaviour_log import behaviour_log_events, read_behaviour_log
from trackrec.data.collm import collm_events, read_collm
from trackrec.data.config import DataConfig
from trackrec.data.csv_log import read_csv_log
from trackrec.data.dataset import Dataset, load_id_maps
from trackrec.data.history import samples_from_events
from trackrec.data.items import item_table
from trackrec.data.movielens import ML1M_FOLDER, collm_recipe_events, read_movies, read_ratings
from trackrec.data.schema import SPLITS
from trackrec.errors import DataError
from trackrec.paths import data_dir


def _day_start(value: str) -> int:
    return int(pd.Timestamp(value, tz="UTC").timestamp())


def build_dataset(config: DataConfig) -> Dataset:
    """Read the configured source and return the validated sample, history and item tables."""
    root = data_dir(config.root)
    meta = {"source": config.source, "config": config_to_dict(config)}
    id_maps = {}
    if config.source == "collm-ml1m":
        events = collm_events(read_collm(root))
        movies_path = root / ML1M_FOLDER / "movies.dat"
        metadata = read_movies(movies_path) if movies_path.exists() else None
        items = item_table(events, metadata, on="title")
    elif config.source == "ml1m-raw":
        movies = read_movies(root / ML1M_FOLDER / "movies.dat")
        events = collm_recipe_events(read_ratings(root / ML1M_FOLDER / "ratings.dat"), movies)
        items = item_table(events, movies.rename(columns={"movie_id": "raw_item_id"}), on="raw_item_id")
    else:
        reader = read_csv_log if config.source == "behaviour-log-csv" else read_behaviour_log
        log = reader(Path(config.path))
        known = load_id_maps(Path(config.id_map)) if config.id_map else {}
        events, item_rows, id_maps = behaviour_log_events(
            log, _day_start(config.valid_start), _day_start(config.test_start), known
        )
        items = item_table(item_rows)
        meta["dropped_duplicates"] = events.attrs["dropped_duplicates"]
    missing = [split for split in SPLITS if not (events["split"] == split).any()]
    if missing:
        raise DataError(config.source, f"no events fall in the {missing} split(s); check the split dates")
    samples, history = samples_from_events(events, config.history, config.max_history, config.source)
    return Dataset.built(samples, history, items, meta, config.max_history, config.source, id_maps)
