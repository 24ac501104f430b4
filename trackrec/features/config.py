"""The features section of the run config: which users get a RecCoT, the encoder, the store and the
A/B arm. A plain dataclass: reading the config imports neither Feast nor torch."""

from __future__ import annotations

from dataclasses import dataclass

from trackrec.config import PROBABILITY, SEED, Config, Range, field
from trackrec.data.snapshots import SnapshotConfig
from trackrec.features.encoder import EncoderConfig
from trackrec.features.store import StoreConfig


@dataclass
class UserDraw(Config):
    """Which users get a RecCoT, and as of when: the summarize stage's share of the features section."""

    users: int | None = field(
        None, help="users whose RecCoT G(T) writes (drawn at random); none: every user", range=Range(1)
    )
    seed: int = field(0, help="which users are drawn", range=SEED)
    snapshots: SnapshotConfig = field(factory=SnapshotConfig, help="the times each user's RecCoT is written as of")


@dataclass
class FeaturesConfig(UserDraw):
    encoder: EncoderConfig = field(factory=EncoderConfig, help="encode stage")
    store: StoreConfig = field(factory=StoreConfig, help="Feast store the version is published to")
    arm: str | None = field("control", help="arm that reads the new version once it is complete; none: no arm")
    max_drop: float = field(
        0.1, help="refuse a version missing more than this share of the users the arm reads", range=PROBABILITY
    )
    force: bool = field(False, help="publish even past max_drop")
    keep_versions: int | None = field(
        None,
        help="after publishing, prune to this many newest versions (never one an arm may need); none: keep all",
        range=Range(1),
    )
