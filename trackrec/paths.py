"""Where the data lives (config first, then TRACKREC_DATA_DIR, then ../shared/data) and where a local
run writes: its run folder (`trackrec run --run-dir`, default RUN_DIR), every default path under it."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "TRACKREC_DATA_DIR"
_DEFAULT_DATA_DIR = Path("..") / "shared" / "data"
RUN_DIR = Path("runs") / "local"  # the default run folder: artifacts, KFP's cache, the Feast repo, latest.json


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV) or _DEFAULT_DATA_DIR)


def feast_repo(run_dir: str | os.PathLike = RUN_DIR) -> Path:
    """The Feast repo of the run folder `run_dir`, where a store config that names none publishes."""
    return Path(run_dir) / "feast"
