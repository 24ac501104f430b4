"""A ranker's read path: user -> arm -> feature version, vector and model, over HTTP.

Per request: the experiment's hash puts the user in an arm (trackrec/experiments/assignment.py),
the arm names its frozen feature version and the model trained on it, and one POST to the read-only
feature server (`/get-online-features` on `feast serve` behind trackrec/features/read_only.py) reads
the user's newest snapshot from that version's FeatureService `reccot_<version>` (the version, not
the arm's moving pointer: the treatment cannot change under a running experiment), through
trackrec/features/http_read.py, the one HTTP reader `trackrec features get --url` uses too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trackrec.experiments.assignment import Experiment
from trackrec.features import definitions
from trackrec.features.http_read import read_over_http, request_body


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
        self.url, self.experiment, self.ttl_days, self.timeout = url, experiment, ttl_days, timeout

    def request(self, user_id: int) -> dict:
        """The body POSTed to /get-online-features for this user."""
        return request_body(definitions.view_name(self.experiment.arm_of(user_id).feature_version), [user_id])

    def read(self, user_id: int) -> ArmRead:
        arm = self.experiment.arm_of(user_id)
        service = definitions.view_name(arm.feature_version)
        row = read_over_http(self.url, service, [user_id], self.ttl_days, self.timeout).iloc[0]
        as_of = None if pd.isna(row.as_of) else int(row.as_of)
        return ArmRead(int(user_id), arm.name, arm.feature_version, arm.model, row.embedding, as_of, row.reccot)
