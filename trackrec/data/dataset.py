"""A prepared dataset: canonical samples per split plus the item table, saved whole or not at all."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.config import Config, config_to_dict, field
from trackrec.data.behaviour_log import behaviour_log_events, read_behaviour_log
from trackrec.data.collm import collm_events, read_collm
from trackrec.data.history import HistoryMode, samples_from_events
from trackrec.data.items import ITEM_COLUMNS, item_table
from trackrec.data.movielens import ML1M_FOLDER, collm_recipe_events, read_movies, read_ratings
from trackrec.data.schema import SPLITS, require_columns, validate_samples
from trackrec.errors import DataError
from trackrec.paths import data_dir


@dataclass
class DataConfig(Config):
    source: Literal["collm-ml1m", "ml1m-raw", "behaviour-log"] = field(
        "collm-ml1m",
        help="collm-ml1m: CoLLM's processed splits; ml1m-raw: rebuild them from ratings.dat; "
        "behaviour-log: a production parquet log (see README)",
    )
    root: str | None = field(None, help="data folder; default $TRACKREC_DATA_DIR or ../shared/data")
    path: str | None = field(None, help="behaviour-log parquet path (source: behaviour-log)")
    history: HistoryMode = field(
        HistoryMode.FULL, help="full: liked and disliked earlier items; liked: CoLLM's liked-only"
    )
    max_history: int = field(50, help="most recent history items kept per sample")
    valid_start: str | None = field(None, help="behaviour-log: first day of the valid split (ISO date, UTC)")
    test_start: str | None = field(None, help="behaviour-log: first day of the test split (ISO date, UTC)")
    id_map: str | None = field(
        None,
        help="behaviour-log: folder (or s3:// prefix) of the raw->dense id maps that every run reads and "
        "extends, so a user keeps its id (and its feature rows) across runs; none: ids from this log alone",
    )

    def problems(self) -> list[str]:
        problems = self.at_least(1, "max_history")
        if self.source == "behaviour-log":
            for name in ("path", "valid_start", "test_start"):
                if getattr(self, name) is None:
                    problems.append(f"{name}: required when source is behaviour-log")
            for name in ("valid_start", "test_start"):
                value = getattr(self, name)
                if value is not None:
                    try:
                        pd.Timestamp(value)
                    except ValueError:
                        problems.append(f"{name}: {value!r} is not an ISO date")
        return problems


@dataclass
class Dataset:
    """samples: split name -> canonical frame; items: ITEM_COLUMNS; meta: provenance and sizes;
    id_maps: "user"/"item" -> (raw_id, id) of a behaviour log (saved beside the samples)."""

    samples: dict[str, pd.DataFrame]
    items: pd.DataFrame
    meta: dict = dataclasses.field(default_factory=dict)
    id_maps: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Embedding table size: max user id + 1 (0 is padding)."""
        return int(max(frame["user_id"].max() for frame in self.samples.values())) + 1

    @property
    def n_items(self) -> int:
        return int(self.items["item_id"].max()) + 1

    def save(self, folder: str | Path) -> Path:
        with atomic_dir(folder) as tmp:
            for split, frame in self.samples.items():
                frame.to_parquet(tmp / f"{split}.parquet", index=False)
            self.items.to_parquet(tmp / "items.parquet", index=False)
            save_id_maps(self.id_maps, tmp)
            (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2))
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path) -> Dataset:
        folder = Path(folder)
        if not (folder / "meta.json").exists():
            raise DataError(str(folder), "not a prepared dataset (no meta.json); run `trackrec data prepare` first")
        samples = {}
        for split in SPLITS:
            path = folder / f"{split}.parquet"
            if not path.exists():
                raise DataError(str(path), "split file missing")
            samples[split] = validate_samples(pd.read_parquet(path), str(path))
        items = pd.read_parquet(folder / "items.parquet")
        require_columns(items, ITEM_COLUMNS, str(folder / "items.parquet"))
        return cls(samples, items, json.loads((folder / "meta.json").read_text()), load_id_maps(folder))


ID_MAP_FILES = {"user": "user_ids.parquet", "item": "item_ids.parquet"}


def save_id_maps(id_maps: dict[str, pd.DataFrame], folder: Path) -> None:
    for kind, frame in id_maps.items():
        frame.to_parquet(folder / ID_MAP_FILES[kind], index=False)


def load_id_maps(folder: Path) -> dict[str, pd.DataFrame]:
    """The id maps saved in `folder` (none where it has none)."""
    maps = {}
    for kind, name in ID_MAP_FILES.items():
        if (folder / name).exists():
            frame = pd.read_parquet(folder / name)
            require_columns(frame, ("raw_id", "id"), str(folder / name))
            maps[kind] = frame.astype({"raw_id": str, "id": "int64"})
    return maps


def _day_start(value: str) -> int:
    return int(pd.Timestamp(value, tz="UTC").timestamp())


def build_dataset(config: DataConfig) -> Dataset:
    """Read the configured source and return validated canonical samples and the item table."""
    root = data_dir(config.root)
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
        log = read_behaviour_log(Path(config.path))
        known = load_id_maps(Path(config.id_map)) if config.id_map else {}
        events, id_maps = behaviour_log_events(
            log, _day_start(config.valid_start), _day_start(config.test_start), known
        )
        items = item_table(events)
    samples = samples_from_events(events, config.history, config.max_history)
    missing = [split for split in SPLITS if split not in samples]
    if missing:
        raise DataError(config.source, f"no events fall in the {missing} split(s); check the split dates")
    samples = {split: validate_samples(samples[split], f"{config.source}:{split}") for split in SPLITS}
    meta = {
        "source": config.source,
        "config": config_to_dict(config),
        "rows": {split: len(frame) for split, frame in samples.items()},
    }
    if config.source != "behaviour-log":
        return Dataset(samples, items, meta)
    meta["dropped_duplicates"] = log.attrs["dropped_duplicates"]
    return Dataset(samples, items, meta, id_maps)
