"""The data section of the run config: which source a run reads and how it becomes samples. Plain
dataclasses: reading the config imports no data reader."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from trackrec.config import Config, Range, field
from trackrec.reach import path_problems


class HistoryMode(StrEnum):
    FULL = "full"  # every earlier interaction, liked and disliked, with its label
    LIKED = "liked"  # earlier liked items only (CoLLM's `his`)


@dataclass
class DataConfig(Config):
    source: Literal["collm-ml1m", "ml1m-raw", "behaviour-log", "behaviour-log-csv"] = field(
        "collm-ml1m",
        help="collm-ml1m: CoLLM's processed splits; ml1m-raw: rebuild them from ratings.dat; "
        "behaviour-log: a production parquet log (see docs/data.md); behaviour-log-csv: the same columns in one CSV",
    )
    root: str | None = field(None, help="data folder; default $TRACKREC_DATA_DIR or ../shared/data")
    path: str | None = field(
        None,
        help="behaviour-log: a parquet file, a folder of parquet parts, or an s3:// prefix ending in / "
        "(source: behaviour-log)",
    )
    history: HistoryMode = field(
        HistoryMode.FULL, help="full: liked and disliked earlier items; liked: CoLLM's liked-only"
    )
    max_history: int = field(50, help="most recent history items kept per sample", range=Range(1, 100_000))
    valid_start: str | None = field(None, help="behaviour-log: first day of the valid split (ISO date, UTC)")
    test_start: str | None = field(None, help="behaviour-log: first day of the test split (ISO date, UTC)")
    id_map: str | None = field(
        None,
        help="behaviour-log: folder (or s3:// prefix) of the raw->dense id maps that every run reads and "
        "extends, so a user keeps its id (and its feature rows) across runs; none: ids from this log alone",
    )
    conversion_at_rating: float | None = field(
        None,
        help="a stated CVR proxy for a source with ratings but no conversions: a click (label 1) rated at least "
        "this converts (e.g. 5, where a click is a rating >= 4); none: the log's own conversion column, if any",
        range=Range(-1e9, 1e9),  # any finite rating scale
    )

    def problems(self) -> list[str]:
        import pandas as pd  # only to read the split dates

        problems = path_problems("path", self.path) + path_problems("id_map", self.id_map)
        if self.reads_log:
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

    @property
    def reads_log(self) -> bool:
        """A behaviour log at `path` (split by the dates), not a MovieLens folder under `root`."""
        return self.source in ("behaviour-log", "behaviour-log-csv")
