"""Where the data lives: config first, then TRACKREC_DATA_DIR, then ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "TRACKREC_DATA_DIR"
_DEFAULT_DATA_DIR = Path("..") / "shared" / "data"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV) or _DEFAULT_DATA_DIR)
