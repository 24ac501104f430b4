"""A behaviour log as one CSV file (the columns of docs/data.md's behaviour-log table)."""

from pathlib import Path

import pandas as pd

from trackrec.data.behaviour_log import check_log
from trackrec.errors import DataError


def read_csv_log(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(str(path), "file not found")
    return check_log(pd.read_csv(path), str(path))
