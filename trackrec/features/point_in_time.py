"""How a CTR/CVR team joins RecCoT features to its training samples: Feast's point-in-time join.

Each sample (user_id, timestamp in Unix seconds) gets its user's newest snapshot from strictly
before it: Feast's join takes rows stamped at or before the entity's time, so the entity table
carries each sample's time less a microsecond. A snapshot older than the view's TTL is not joined.
train_ctr reads the same vectors through the as-of join in trackrec/data/snapshots.py, which a test
holds equal to this on the same rows (it runs in the training stream, without a Feast round trip).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trackrec.features import definitions
from trackrec.features.store import OpenedStore

ENTITY_TIME = "event_timestamp"


def training_features(store: OpenedStore, version: str, samples: pd.DataFrame) -> pd.DataFrame:
    """`samples` (user_id, timestamp) with each one's snapshot through Feast's point-in-time join:
    embedding (None where there is none), as_of, reccot; in the samples' order."""
    view = definitions.view_name(version)
    keys = pd.DataFrame(
        {"user_id": samples.user_id.to_numpy(np.int64), "timestamp": samples.timestamp.to_numpy(np.int64)}
    )
    # Feast's file store keeps one row per (entity, time) and drops those whose newest snapshot is
    # past the TTL: join the distinct pairs, then give every sample its pair's row
    distinct = keys.drop_duplicates().reset_index(drop=True)
    entities = distinct.assign(
        **{ENTITY_TIME: pd.to_datetime(distinct.timestamp, unit="s", utc=True) - pd.Timedelta(microseconds=1)}
    )
    features = [f"{view}:{name}" for name in ("embedding", "as_of", "reccot")]
    joined = store.feast.get_historical_features(entity_df=entities, features=features).to_df()
    joined = keys.merge(joined[["user_id", "timestamp", "embedding", "as_of", "reccot"]], how="left")
    return pd.DataFrame(
        {
            "user_id": keys.user_id,
            "timestamp": keys.timestamp,
            "as_of": joined.as_of.astype("Int64"),
            "reccot": joined.reccot,
            "embedding": [
                np.asarray(v, np.float32) if isinstance(v, list | np.ndarray) else None for v in joined.embedding
            ],
        }
    )
