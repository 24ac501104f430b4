"""The exposure log: one row per impression, what was shown to whom under which arm, and what came of it.

| column | type | required | meaning |
| --- | --- | --- | --- |
| impression_id | string | yes | unique per impression |
| user_id | int | yes | the user id the feature store keys (the hash's input) |
| item_id | int | yes | the item shown |
| arm | string | yes | the arm the user was served from (the hash of (salt, user_id)) |
| feature_version | string | yes | the feature version the ranker read |
| model_version | string | yes | the CTR/CVR model that scored it |
| timestamp | int | yes | Unix seconds of the impression |
| click | 0/1 | yes | clicked |
| conversion | 0/1 | no | converted after the click (1 requires click 1) |
| p_click | float in [0, 1] | no | the model's click probability |
| p_conversion | float in [0, 1] | no | the model's post-click conversion probability |
| feature_miss | 0/1 | no | the ranker found no vector and served zeros |
| latency_ms | float >= 0 | no | serving latency |
| pre_clicks, pre_impressions | int >= 0 | no | the user's clicks and impressions before the experiment (CUPED) |

Written as parquet; every problem is refused naming the file, row and column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trackrec.data.schema import check_binary, first_bad_row, plain, require_columns
from trackrec.errors import DataError

REQUIRED = {
    "impression_id": "string",
    "user_id": "int64",
    "item_id": "int64",
    "arm": "string",
    "feature_version": "string",
    "model_version": "string",
    "timestamp": "int64",
    "click": "int8",
}
OPTIONAL = {
    "conversion": "int8",
    "p_click": "float64",
    "p_conversion": "float64",
    "feature_miss": "int8",
    "latency_ms": "float64",
    "pre_clicks": "int64",
    "pre_impressions": "int64",
}


def checked(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The log typed as above, or a DataError naming the first bad row and column."""
    require_columns(frame, tuple(REQUIRED), source)
    if frame.empty:
        raise DataError(source, "no impressions")
    frame = frame.reset_index(drop=True)
    for column in REQUIRED:
        missing = frame[column].isna().to_numpy()
        if missing.any():
            raise DataError(source, "missing value", row=first_bad_row(missing), field=column)
    for column in ("user_id", "item_id", "timestamp", "pre_clicks", "pre_impressions"):
        if column in frame:
            _within(frame[column], source, column, 0, np.inf, whole=True)
    repeated = frame["impression_id"].astype(str).duplicated().to_numpy()
    if repeated.any():
        row = first_bad_row(repeated)
        raise DataError(
            source, f"repeats impression {frame['impression_id'].iloc[row]!r}", row=row, field="impression_id"
        )
    for column in ("click", "conversion", "feature_miss"):
        if column in frame:
            check_binary(frame[column], source, column)
    if "conversion" in frame:
        orphan = ((frame["conversion"] == 1) & (frame["click"] == 0)).to_numpy()
        if orphan.any():
            raise DataError(
                source, "a conversion without a click (click 0)", row=first_bad_row(orphan), field="conversion"
            )
    for column in ("p_click", "p_conversion"):
        if column in frame:
            _within(frame[column], source, column, 0.0, 1.0)
    if "latency_ms" in frame:
        _within(frame["latency_ms"], source, "latency_ms", 0.0, np.inf)
    kinds = {c: t for c, t in (REQUIRED | OPTIONAL).items() if c in frame}
    return frame[list(kinds)].astype(kinds)


def _within(values: pd.Series, source: str, column: str, low: float, high: float, whole: bool = False) -> None:
    """Raise naming the first row that is not a number in [low, high] (a whole one, if `whole`)."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | (numeric < low) | (numeric > high) | (whole & (numeric != np.floor(numeric)))
    if bad.any():
        row = first_bad_row(bad.to_numpy())
        kind = f"a whole number >= {low:g}" if whole else f"a number in [{low}, {high}]"
        raise DataError(source, f"must be {kind}, got {plain(values.iloc[row])!r}", row=row, field=column)


def read(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), "exposure log not found")
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise DataError(str(path), f"not a readable parquet file ({str(error).splitlines()[0]})") from error
    return checked(frame, str(path))


def write(frame: pd.DataFrame, path: str | Path) -> Path:
    """Check, then write `frame` as parquet (whole or not at all)."""
    frame = checked(frame, "exposures")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    frame.to_parquet(partial, index=False)
    partial.replace(path)
    return path
