"""Stage publish: an encoded table becomes a new feature-store version, read by an A/B arm."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from trackrec.artifacts.s3 import sha256_of
from trackrec.atomic import atomic_dir
from trackrec.features.config import FeaturesConfig
from trackrec.features.store import open_store
from trackrec.features.versions import arm_version, assign, is_published
from trackrec.features.versions import publish as publish_version
from trackrec.timing import work_begins


def content_version(embeddings_dir: str | Path) -> str:
    """The version name of an embeddings table: new whenever its content changes, the same on a re-run."""
    return "emb_" + sha256_of(Path(embeddings_dir) / "embeddings.parquet")[:12]


def publish(embeddings_dir: str | Path, config: FeaturesConfig, output: str | Path, partial: bool = False) -> dict:
    """Publish embeddings.parquet as a new version (unless that version is complete: a re-run that
    only changed the arm), point `config.arm` at it; writes summary.json.

    partial: the table holds only some users (the active ones); the others' rows are carried over
    from the version the arm reads now."""
    work_begins()
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
