"""The features section of the run config: which users get a RecCoT, the encoder, the store and the
A/B arm. A plain dataclass: reading the config imports neither Feast nor torch."""

from __future__ import annotations

from dataclasses import dataclass

from trackrec.config import Config, field
from trackrec.data.snapshots import SnapshotConfig
from trackrec.features.encoder import EncoderConfig
from trackrec.features.store import StoreConfig


@dataclass
class UserDraw(Config):
    """Which users get a RecCoT, and as of when: the summarize stage's share of the features section."""

    users: int | None = field(None, help="users whose RecCoT G(T) writes (drawn at random); none: every user")
    seed: int = field(0, help="which users are drawn")
    snapshots: SnapshotConfig = field(factory=SnapshotConfig, help="the times each user's RecCoT is written as of")

    def problems(self) -> list[str]:
        return self.at_least(1, "users") if self.users is not None else []


@dataclass
class FeaturesConfig(UserDraw):
    encoder: EncoderConfig = field(factory=EncoderConfig, help="encode stage")
    store: StoreConfig = field(factory=StoreConfig, help="Feast store the version is published to")
    arm: str | None = field("control", help="arm that reads the new version once it is complete; none: no arm")
    max_drop: float = field(0.1, help="refuse a version missing more than this share of the users the arm reads")
    force: bool = field(False, help="publish even past max_drop")
    keep_versions: int | None = field(
        None, help="after publishing, prune to this many newest versions (never one an arm may need); none: keep all"
    )

    def problems(self) -> list[str]:
        problems = super().problems()
        problems += self.at_least(1, "keep_versions") if self.keep_versions is not None else []
        if not 0 <= self.max_drop <= 1:
            problems.append(f"max_drop: a share in [0, 1], got {self.max_drop}")
        return problems
