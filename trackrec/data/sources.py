"""How each source of the data section (trackrec/data/config.py) becomes a Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.config import config_to_dict
from trackrec.data.behaviour_log import behaviour_log_events, read_behaviour_log
from trackrec.data.collm import collm_events, read_collm
from trackrec.data.config import DataConfig
from trackrec.data.csv_log import read_csv_log
from trackrec.data.dataset import Dataset, load_id_maps
from trackrec.data.history import samples_from_events
from trackrec.data.items import item_table
from trackrec.data.log_shards import LogShard
from trackrec.data.movielens import ML1M_FOLDER, collm_recipe_events, read_movies, read_ratings
from trackrec.data.schema import SPLITS
from trackrec.errors import DataError
from trackrec.paths import data_dir


def _day_start(value: str) -> int:
    return int(pd.Timestamp(value, tz="UTC").timestamp())


def build_dataset(config: DataConfig, shard: LogShard | None = None) -> Dataset:
    """Read the configured source and return the validated sample, history and item tables; with
    `shard`, only its users' events of the parquet log, numbered by its plan's id maps (the splits
    are checked when the shards are joined)."""
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
        events, items, id_maps = _log_events(config, shard)
        meta["dropped_duplicates"] = events.attrs["dropped_duplicates"]
    if config.conversion_at_rating is not None:
        events["conversion"] = rating_proxy(events, config.conversion_at_rating, config.source)
    if shard is None:
        require_splits({split: int((events["split"] == split).sum()) for split in SPLITS}, config.source)
    samples, history = samples_from_events(events, config.history, config.max_history, config.source)
    return Dataset.built(samples, history, items, meta, config.max_history, config.source, id_maps)


def _log_events(config: DataConfig, shard: LogShard | None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(events, item table, id maps) of the behaviour log, or of one shard's users in it."""
    source = Path(config.path)
    if shard is None:
        reader = read_csv_log if config.source == "behaviour-log-csv" else read_behaviour_log
        log, known = reader(source), load_id_maps(Path(config.id_map)) if config.id_map else {}
    else:
        log, known = read_behaviour_log(source, users=shard.users), shard.id_maps
        if len(log) != shard.events:
            raise DataError(
                str(source),
                f"holds {len(log)} events of this shard's users where its plan counted {shard.events}: "
                "the log changed after it was planned; run again",
            )
    events, item_rows, id_maps = behaviour_log_events(
        log, _day_start(config.valid_start), _day_start(config.test_start), known
    )
    if shard is not None and len(id_maps["item"]) != len(known["item"]):
        raise DataError(str(source), "holds items its plan did not number: the log changed after it was planned")
    return events, item_table(item_rows), id_maps if shard is None else {}  # a shard's maps: its plan's


def rating_proxy(events: pd.DataFrame, at: float, source: str) -> np.ndarray:
    """The stated CVR proxy: a click rated at least `at` converts (docs/experiments.md)."""
    if "conversion" in events:
        raise DataError(source, "has its own conversion column: unset data.conversion_at_rating", field="conversion")
    ratings = events["rating"].to_numpy(np.float64)
    if np.isnan(ratings).all():
        raise DataError(
            source, "no ratings: the conversion proxy (data.conversion_at_rating) needs them", field="rating"
        )
    return ((events["label"].to_numpy() == 1) & (ratings >= at)).astype(np.int8)


def require_splits(rows: dict[str, int], source: str) -> None:
    """Raise unless every split holds events."""
    missing = [split for split in SPLITS if not rows.get(split)]
    if missing:
        raise DataError(source, f"no events fall in the {missing} split(s); check the split dates")
