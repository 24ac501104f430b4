"""An experiment's definition and the assignment of users to its arms.

A user's arm is a pure function of (salt, user id): the first 8 bytes of SHA-256 over the UTF-8 text
`f"{salt}:{user_id}"`, read big-endian as an unsigned integer and divided by 2**64, give a bucket in
[0, 1); the arms' shares, in their listed order, cut [0, 1) into consecutive ranges. Any service in
any language recomputes it from the salt and the shares; a new salt reshuffles everyone.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from trackrec.errors import TrackRecError

STATUSES = ("running", "stopped")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,62}$")


class ExperimentError(TrackRecError):
    """An experiment definition or a change to one that cannot stand."""


@dataclass(frozen=True)
class ArmSpec:
    """One arm: the feature version its ranker reads, the CTR/CVR model trained on that version, and
    its share of the traffic."""

    name: str
    feature_version: str
    model: str
    share: float


@dataclass(frozen=True)
class Experiment:
    """arms: the first is the control, every later one a treatment; frozen while `status` is running:
    the arms' versions and models stay those listed here."""

    name: str
    salt: str
    arms: tuple[ArmSpec, ...]
    start: str  # ISO time, UTC
    status: str = "running"
    stopped_at: str | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append(f"name {self.name!r}: letters, digits and _ (up to 63), starting with a letter or digit")
        if not self.salt:
            problems.append("salt: must not be empty")
        if len(self.arms) < 2:
            problems.append(f"arms: an experiment needs a control and at least one treatment, got {len(self.arms)}")
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            problems.append(f"arms: names repeat in {names}")
        if any(not 0 < arm.share <= 1 for arm in self.arms):
            problems.append(f"shares: each in (0, 1], got {[arm.share for arm in self.arms]}")
        if not math.isclose(sum(arm.share for arm in self.arms), 1.0, abs_tol=1e-9):
            problems.append(f"shares: must sum to 1, got {sum(arm.share for arm in self.arms):.6g}")
        if self.status not in STATUSES:
            problems.append(f"status: one of {STATUSES}, got {self.status!r}")
        if problems:
            raise ExperimentError(f"experiment {self.name!r}: " + "; ".join(problems))

    @property
    def control(self) -> ArmSpec:
        return self.arms[0]

    @property
    def running(self) -> bool:
        return self.status == "running"

    def arm(self, name: str) -> ArmSpec:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ExperimentError(f"experiment {self.name!r} has no arm {name!r}; its arms: {[a.name for a in self.arms]}")

    def arm_of(self, user_id: int | str) -> ArmSpec:
        """The arm user `user_id` is in."""
        return self.arms[_arm_index(bucket(self.salt, user_id), self.arms)]

    def arms_of(self, user_ids) -> np.ndarray:
        """The arm names of many users, in order."""
        buckets = np.array([bucket(self.salt, u) for u in user_ids], dtype=np.float64)
        edges = np.cumsum([arm.share for arm in self.arms])[:-1]
        names = np.array([arm.name for arm in self.arms], dtype=object)
        return names[np.searchsorted(edges, buckets, side="right")]

    def stopped(self, at: str) -> Experiment:
        return replace(self, status="stopped", stopped_at=at)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Experiment:
        data = json.loads(text)
        data["arms"] = tuple(ArmSpec(**arm) for arm in data["arms"])
        return cls(**data)


def bucket(salt: str, user_id: int | str) -> float:
    """The user's point in [0, 1): SHA-256 of "salt:user_id", its first 8 bytes over 2**64."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _arm_index(point: float, arms: tuple[ArmSpec, ...]) -> int:
    edge = 0.0
    for index, arm in enumerate(arms[:-1]):
        edge += arm.share
        if point < edge:
            return index
    return len(arms) - 1
