"""A version's online rows: each user's newest snapshot, written from the version's offline file a
chunk at a time, and checked user by user against what the online store serves.

Feast's Redis store keeps one hash per entity key with a `_ts:<view>` field and one field per
feature of every view written for that user (feast/infra/online_stores/redis.py:470-490; the key:
helpers.py:25-35), so keys alone cannot count one view's rows: reading each expected user's `as_of`
through Feast (an HMGET of two fields per user, redis.py:682-700, 791-830) counts them exactly, on
SQLite as on Redis, and says which users are gone or hold another table's snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from trackrec.features.offline import read_batches
from trackrec.features.store import StoreConfig, StoreError
from trackrec.inert import inert

CHUNK = 1000  # online rows per write or read: progress, and bounded memory in the serialiser


def no_snapshots() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [], "as_of": []}, dtype="int64")


def snapshots_of(path: str, config: StoreConfig) -> pd.DataFrame:
    """user_id, as_of of every row of an offline file, in its order (16 bytes a row)."""
    parts = list(read_batches(path, config.s3_endpoint, ["user_id", "as_of"]))
    if parts and "as_of" not in parts[0].columns:  # a version published before RecCoTs had times
        raise StoreError(f"{path}: no as_of column (written by an older trackrec): run the retrain once")
    return pd.concat(parts, ignore_index=True) if parts else no_snapshots()


def newest_rows(snapshots: pd.DataFrame) -> np.ndarray:
    """Whether each row (user_id, as_of; unique pairs) is its user's newest snapshot: the one served
    online."""
    return (snapshots.groupby("user_id").as_of.transform("max") == snapshots.as_of).to_numpy()


def failure(error: BaseException, what: str) -> StoreError | None:
    """The one-line error for an online store that failed during `what`; None for other errors."""
    import redis

    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return StoreError(
            f"{what}: the online store redis is full (maxmemory reached; with noeviction it refuses writes): "
            "prune old versions (`trackrec features prune`) or give Redis more memory"
        )
    if isinstance(error, redis.RedisError):
        return StoreError(f"{what}: the online store redis failed: {inert(error, 300)}")
    return None


@contextlib.contextmanager
def failing_as(what: str) -> Iterator[None]:
    """An online store's failure inside becomes the one-line error naming `what`."""
    try:
        yield
    except Exception as error:
        found = failure(error, what)
        if found is None:
            raise
        raise found from error


def _served_as_of(feast, view_name: str, users: np.ndarray) -> np.ndarray:
    """The as_of the online store serves for each user of `view_name` (-1: no row)."""
    import sqlite3

    served = np.full(len(users), -1, dtype=np.int64)
    for start in range(0, len(users), CHUNK):
        rows = [{"user_id": int(u)} for u in users[start : start + CHUNK]]
        try:
            read = feast.get_online_features(features=[f"{view_name}:as_of"], entity_rows=rows).to_dict()["as_of"]
        except sqlite3.OperationalError as error:  # a SQLite file that never held the view: it serves none
            if "no such table" not in str(error):
                raise
            return served
        served[start : start + len(rows)] = [-1 if v is None else v for v in read]
    return served


def missing(feast, view, config: StoreConfig) -> tuple[pd.Index, int]:
    """(the users whose online row is gone or is not their newest snapshot in the version's offline
    file, how many users the version serves): every user is read, none sampled."""
    snapshots = snapshots_of(view.batch_source.path, config)
    newest = snapshots[newest_rows(snapshots)]
    users = newest.user_id.to_numpy(np.int64)
    with failing_as(f"reading {view.name}'s online rows"):
        served = _served_as_of(feast, view.name, users)
    return pd.Index(users[served != newest.as_of.to_numpy(np.int64)]), len(users)


def write(feast, view, config: StoreConfig, what: str, progress: bool, users: pd.Index | None = None) -> int:
    """A version's online rows from its offline file: each user's newest snapshot (of `users` only,
    if given), CHUNK rows per write; returns how many users."""
    snapshots = snapshots_of(view.batch_source.path, config)
    newest = newest_rows(snapshots)
    if users is not None:
        newest &= snapshots.user_id.isin(users).to_numpy()
    bar = tqdm(total=int(newest.sum()), desc=what, disable=not progress, unit="user")
    offset = 0
    for batch in read_batches(view.batch_source.path, config.s3_endpoint):
        served = batch[newest[offset : offset + len(batch)]]
        offset += len(batch)
        for start in range(0, len(served), CHUNK):
            feast.write_to_online_store(view.name, served.iloc[start : start + CHUNK])
            bar.update(min(CHUNK, len(served) - start))
    bar.close()
    return int(newest.sum())
