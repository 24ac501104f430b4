"""Stage publish: an encoded table becomes a new feature-store version, read by an A/B arm."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.config import Config, field
from trackrec.features.encoder import EncoderConfig
from trackrec.features.store import StoreConfig
from trackrec.features.versions import assign, is_published
from trackrec.features.versions import publish as publish_version


@dataclass
class FeaturesConfig(Config):
    users: int | None = field(None, help="users whose RecCoT G(T) writes (drawn at random); none: every user")
    seed: int = field(0, help="which users are drawn")
    encoder: EncoderConfig = field(factory=EncoderConfig, help="encode stage")
    store: StoreConfig = field(factory=StoreConfig, help="Feast store the version is published to")
    arm: str | None = field("control", help="arm that reads the new version once it is complete; none: no arm")

    def problems(self) -> list[str]:
        return self.at_least(1, "users") if self.users is not None else []


def publish(embeddings_dir: str | Path, version: str, config: FeaturesConfig, output: str | Path) -> dict:
    """Publish embeddings.parquet as `version` (unless that version is complete: a re-run that only
    changed the arm), point `config.arm` at it; writes summary.json."""
    source = Path(embeddings_dir) / "embeddings.parquet"
    if is_published(config.store, version):
        summary = {"version": version, "already_published": True}
    else:
        summary = publish_version(pd.read_parquet(source), version, config.store, source=str(source))
    if config.arm is not None:
        summary["arm"] = assign(config.store, config.arm, version)
    with atomic_dir(output) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
