"""A ranker's read path: user -> arm -> feature version, vector and model, over HTTP.

Per request: the experiment's hash puts the user in an arm (trackrec/experiments/assignment.py),
the arm names its frozen feature version and the model trained on it, and one POST to the read-only
feature server (`/get-online-features` on `feast serve` behind trackrec/features/read_only.py) reads
the user's newest snapshot from that version's FeatureService `reccot_<version>` (the version, not
the arm's moving pointer: the treatment cannot change under a running experiment). The response's
`model_version` column holds the feature version that wrote the row; here it is `feature_version`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np

from trackrec.experiments.assignment import Experiment
from trackrec.features import definitions
from trackrec.features.store import StoreError

DAY = 86_400


@dataclass(frozen=True)
class ArmRead:
    """What a ranker scores one user with."""

    user_id: int
    arm: str
    feature_version: str
    model: str
    embedding: np.ndarray | None  # None: the user has no snapshot (or it is past the TTL): serve zeros
    as_of: int | None  # Unix seconds the snapshot summarises the user as of
    reccot: str | None

    @property
    def feature_miss(self) -> bool:
        return self.embedding is None

    def vector(self, dim: int) -> np.ndarray:
        """The vector to score with: zeros on a miss, as in training."""
        return np.zeros(dim, np.float32) if self.embedding is None else self.embedding


class ArmClient:
    """Reads users' arm features from `url` (the read-only front, or `feast serve`) for `experiment`."""

    def __init__(self, url: str, experiment: Experiment, ttl_days: int | None = None, timeout: float = 2.0):
        self.url, self.experiment, self.ttl_days, self.timeout = url.rstrip("/"), experiment, ttl_days, timeout

    def request(self, user_id: int) -> dict:
        """The body POSTed to /get-online-features for this user."""
        arm = self.experiment.arm_of(user_id)
        return {"feature_service": definitions.view_name(arm.feature_version), "entities": {"user_id": [user_id]}}

    def read(self, user_id: int) -> ArmRead:
        arm = self.experiment.arm_of(user_id)
        answer = _post(f"{self.url}/get-online-features", self.request(user_id), self.timeout)
        columns = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
        value = {name: column["values"][0] for name, column in columns.items()}
        found = columns.get("embedding", {}).get("statuses", ["NOT_FOUND"])[0] == "PRESENT"
        as_of = None if value.get("as_of") is None else int(value["as_of"])
        stale = as_of is not None and self.ttl_days and time.time() - as_of > self.ttl_days * DAY
        embedding = np.asarray(value["embedding"], np.float32) if found and not stale else None
        reccot = value.get("reccot") if embedding is not None else None
        return ArmRead(int(user_id), arm.name, arm.feature_version, arm.model, embedding, as_of, reccot)


def _post(url: str, body: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise StoreError(f"{url}: HTTP {error.code} {error.read()[:200].decode(errors='replace')}") from error
    except OSError as error:
        raise StoreError(f"{url}: feature server unreachable ({error})") from error
