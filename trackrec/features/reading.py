"""The readers' side of the store (serving, `trackrec features get`, tests): open the repo a publisher
wrote and read online features from it, as a CTR model reads them.

A reader never opens the publisher's `OpenedStore`: that checks Redis and S3 and rewrites the repo's
feature_store.yaml. Over HTTP, from the feature server a ranker reaches, the same rows come from
trackrec/features/http_read.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.features import definitions
from trackrec.features.store import StoreError
from trackrec.features.versions import completion_mark, find_service


def open_repo(repo: str | Path):
    """A reader's store: the Feast FeatureStore a publisher wrote into `repo`."""
    from feast import FeatureStore

    if not (Path(repo) / "feature_store.yaml").is_file():
        raise StoreError(f"{repo}: no feature_store.yaml; publish a version first")
    return FeatureStore(repo_path=str(repo))


def read(reader, user_ids: list[int], version: str | None = None, arm: str = "control") -> pd.DataFrame:
    """Online features of `user_ids` from `version`, or from what `arm` reads: each user's newest
    snapshot, with its as_of; a user without one reads None, and one whose newest is older than the
    view's TTL reads None for its embedding and RecCoT (its version and as_of stay, to say why).
    `reader`: what `open_repo` opened."""
    if version is not None:
        service = completion_mark(reader, version)
    else:
        service = find_service(reader, definitions.arm_service_name(arm))
        if service is None:
            raise StoreError(f"arm {arm!r} reads no version; assign one with `trackrec features assign`")
    result = reader.get_online_features(features=service, entity_rows=[{"user_id": int(u)} for u in user_ids])
    frame = pd.DataFrame(result.to_dict())
    ttl = reader.get_feature_view(service.feature_view_projections[0].name).ttl
    if ttl and ttl.total_seconds() > 0:  # Feast's online read does not apply it: a stale RecCoT is not served
        age = datetime.now(UTC).timestamp() - frame.as_of.astype("float64")
        stale = (age > ttl.total_seconds()).to_numpy()
        frame.loc[stale, ["embedding", "reccot"]] = None
    frame["embedding"] = [None if v is None else np.asarray(v, dtype=np.float32) for v in frame.embedding]
    return frame
