"""Versioned publishing for A/B arms: publish, assign an arm, promote, roll back, read.

Readers only ever go through a complete version: an arm's service moves to a version after that
version's service (its completion mark) exists. A publish killed midway leaves its view half
written but unnamed by any arm or completion mark; publishing the same version again completes it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from tqdm import tqdm

from trackrec.errors import DataError
from trackrec.features import definitions
from trackrec.features.offline import read_parquet, write_parquet
from trackrec.features.store import StoreConfig, StoreError, open_store
from trackrec.features.vectors import checked_vectors

CHUNK = 1000  # online rows per write: progress, and bounded memory in the serialiser
_COLUMNS = ("user_id", "reccot", "iteration", "embedding")


def _service(store, name: str):
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name)
    except FeatureServiceNotFoundException:
        return None


def _version_service(store, version: str):
    """The completion mark of `version`; an incomplete or unknown version is an error."""
    service = _service(store, definitions.view_name(version))
    if service is None:
        raise StoreError(f"version {version!r} is not a complete published version")
    return service


def _require_complete(store, version: str):
    _version_service(store, version)
    return store.get_feature_view(definitions.view_name(version))


def _rows(table: pd.DataFrame, config: StoreConfig, version: str, source: str) -> pd.DataFrame:
    for column in _COLUMNS:
        if column not in table.columns:
            raise DataError(source, f"missing column '{column}'", field=column)
    if table.empty:  # a complete version of nobody: every reader of the arm would silently get zeros
        raise DataError(source, "no rows: a version must hold at least one user's vector")
    vectors = checked_vectors(table, config.dim, source)
    return pd.DataFrame(
        {
            "user_id": table.user_id.astype("int64").to_numpy(),
            "embedding": list(vectors),
            "reccot": table.reccot.astype(str).to_numpy(),
            "model_version": version,
            "iteration": table.iteration.astype("int64").to_numpy(),
            "event_timestamp": datetime.now(UTC),
        }
    )


def _write_offline(rows: pd.DataFrame, config: StoreConfig, version: str) -> str:
    return write_parquet(rows, f"{config.offline_root}/{version}.parquet", config.s3_endpoint)


def publish(
    table: pd.DataFrame,
    version: str,
    config: StoreConfig,
    carry_from: str | None = None,
    source: str = "embeddings",
    progress: bool = True,
) -> dict:
    """Publish `table` (user_id, reccot, iteration, embedding) as `version`.

    carry_from: an earlier complete version whose rows for users absent from `table` are carried
    over (the recurring job re-summarises only active users). Everything is checked first.
    """
    view_name = definitions.view_name(version)
    rows = _rows(table, config, version, source)
    store = open_store(config)
    if _service(store, view_name) is not None:
        raise StoreError(f"version {version!r} is already published; readers may be on it: publish a new version")
    if carry_from is not None:
        old_view = _require_complete(store, carry_from)
        old = read_parquet(old_view.batch_source.path, config.s3_endpoint)
        kept = old[~old.user_id.isin(rows.user_id)].assign(
            model_version=version, event_timestamp=rows.event_timestamp[0]
        )
        rows = pd.concat([rows, kept[rows.columns]], ignore_index=True)
    view = definitions.version_view(version, _write_offline(rows, config, version), config.s3_endpoint)
    store.apply([definitions.USER, view])
    for start in tqdm(range(0, len(rows), CHUNK), desc=f"publish {version}", disable=not progress, unit="chunk"):
        store.write_to_online_store(view_name, rows.iloc[start : start + CHUNK])
    store.apply([definitions.version_service(view, len(rows))])  # the completion mark, last
    return {"version": version, "rows": len(rows), "carried": len(rows) - len(table), "offline": view.batch_source.path}


def is_published(config: StoreConfig, version: str) -> bool:
    return _service(open_store(config), definitions.view_name(version)) is not None


def arm_version(store, arm: str) -> str | None:
    service = _service(store, definitions.arm_service_name(arm))
    return None if service is None else service.tags["version"]


def assign(config: StoreConfig, arm: str, version: str) -> dict:
    """Point `arm` at a complete `version`; its former version is kept for rollback."""
    return _assign(open_store(config), arm, version)


def _assign(store, arm: str, version: str) -> dict:
    view = _require_complete(store, version)
    previous = arm_version(store, arm)
    store.apply([definitions.arm_service(arm, view, previous)])
    return {"arm": arm, "version": version, "previous": previous}


def promote(config: StoreConfig, source_arm: str = "candidate", target_arm: str = "control") -> dict:
    store = open_store(config)
    version = arm_version(store, source_arm)
    if version is None:
        raise StoreError(f"arm {source_arm!r} reads no version; assign one first")
    return _assign(store, target_arm, version)


def rollback(config: StoreConfig, arm: str = "control") -> dict:
    store = open_store(config)
    service = _service(store, definitions.arm_service_name(arm))
    if service is None or "previous" not in service.tags:
        raise StoreError(f"arm {arm!r} has no earlier version to roll back to")
    return _assign(store, arm, service.tags["previous"])


def read(store, user_ids: list[int], version: str | None = None, arm: str = "control") -> pd.DataFrame:
    """Online features of `user_ids` from `version`, or from what `arm` reads; missing users read None."""
    if version is not None:
        service = _version_service(store, version)
    else:
        service = _service(store, definitions.arm_service_name(arm))
        if service is None:
            raise StoreError(f"arm {arm!r} reads no version; assign one with `trackrec features assign`")
    result = store.get_online_features(features=service, entity_rows=[{"user_id": int(u)} for u in user_ids])
    frame = pd.DataFrame(result.to_dict())
    frame["embedding"] = [None if v is None else np.asarray(v, dtype=np.float32) for v in frame.embedding]
    return frame
