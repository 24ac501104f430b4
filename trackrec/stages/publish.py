"""Stage publish: an encoded table becomes a new feature-store version, read by an A/B arm."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trackrec.artifacts.s3 import sha256_of
from trackrec.atomic import atomic_dir
from trackrec.config import Config, field
from trackrec.features.encoder import EncoderConfig
from trackrec.features.store import StoreConfig, open_store
from trackrec.features.versions import arm_version, assign, is_published
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


def content_version(embeddings_dir: str | Path) -> str:
    """The version name of an embeddings table: new whenever its content changes, the same on a re-run."""
    return "emb_" + sha256_of(Path(embeddings_dir) / "embeddings.parquet")[:12]


def publish(embeddings_dir: str | Path, config: FeaturesConfig, output: str | Path, partial: bool = False) -> dict:
    """Publish embeddings.parquet as a new version (unless that version is complete: a re-run that
    only changed the arm), point `config.arm` at it; writes summary.json.

    partial: the table holds only some users (the active ones); the others' rows are carried over
    from the version the arm reads now."""
    source = Path(embeddings_dir) / "embeddings.parquet"
    version = content_version(embeddings_dir)
    if is_published(config.store, version):
        summary = {"version": version, "already_published": True}
    else:
        carry_from = arm_version(open_store(config.store), config.arm) if partial and config.arm else None
        table = pd.read_parquet(source)
        summary = publish_version(table, version, config.store, carry_from=carry_from, source=str(source))
    if config.arm is not None:
        summary["arm"] = assign(config.store, config.arm, version)
    with atomic_dir(output) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
