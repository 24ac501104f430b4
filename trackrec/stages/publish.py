"""Stage publish: an encoded table becomes a new feature-store version, read by an A/B arm."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.experiments.registry import frozen_by
from trackrec.features.arms import Guard, arm_version, assign
from trackrec.features.config import FeaturesConfig
from trackrec.features.generators import fetch_generator, keep_generator
from trackrec.features.lease import writer
from trackrec.features.store import OpenedStore, StoreError, open_store
from trackrec.features.versions import is_published, online_missing, parquet_chunks, prune, restore, version_tags
from trackrec.features.versions import publish as publish_version
from trackrec.hashing import sha256_of
from trackrec.stages.llm_common import adapter_of
from trackrec.stages.outputs import CurrentGenerator, Embeddings, Published
from trackrec.timing import work_begins


def version_name(content: str, base: str | None) -> str:
    """The version name of an embeddings table's content (and, for an incremental publish, of the
    version its other users are carried from): new whenever either changes, the same on a re-run."""
    digest = content if base is None else hashlib.sha256(f"{content} on {base}".encode()).hexdigest()
    return "emb_" + digest[:12]


def _base(
    store: OpenedStore, config: FeaturesConfig, content: str, expected: str | None
) -> tuple[str | None, str | None]:
    """(the version to carry the other snapshots from, the version this table already became): a
    re-run finds the arm on the version it published from this same table and publishes nothing.
    expected: the version whose G wrote the table (the refresh's); the arm must still read it."""
    current = arm_version(store, config.arm) if config.arm else None
    if current is None:
        raise StoreError(
            f"an incremental publish (active users only) needs a complete version to carry the others from, "
            f"and arm {config.arm!r} reads none: run the retrain first"
        )
    tags = version_tags(store, current)
    base, became = (tags["base"] or None, current) if tags.get("content") == content else (current, None)
    if expected is not None and base != expected:
        raise StoreError(
            f"arm {config.arm!r} moved from {expected} to {current} while this refresh ran (its RecCoTs are "
            f"{expected}'s G's): run the refresh again"
        )
    return base, became


def publish(
    embeddings: str | Path,
    config: FeaturesConfig,
    output: str | Path,
    partial: bool = False,
    data_version: str | None = None,
    generator: str | Path | None = None,
    refreshed_from: str | Path | None = None,
) -> dict:
    """Publish the Embeddings' table as a new version (unless that version is complete: a re-run, which
    writes back only the online rows a Redis lost, every user checked), point `config.arm` at it
    unless a running experiment holds that arm (its treatment stays frozen; the version waits for
    the next experiment); writes Published.

    partial: the table holds only some users' new snapshots (the active ones, as of now); every
    older snapshot is carried over from the version the arm reads now, which must exist, and so is
    its generator. generator: the training stage output of the G that wrote the table (a retrain's),
    its adapter kept with the version for the refresh runs. refreshed_from: CurrentGenerator (a refresh's): the arm
    must still read the version whose G it fetched. Holds the store's writer lease throughout: a
    second publish of the same table waits, then finds its version complete."""
    work_begins()
    source = Embeddings(embeddings).required("table")
    content = sha256_of(source)
    store = open_store(config.store)  # once: each opening checks Redis and S3 and rewrites the repo file
    expected = None if refreshed_from is None else CurrentGenerator(refreshed_from).required("version").read_text()
    with writer(store, f"publish {source}"):
        base, became = _base(store, config, content, expected) if partial else (None, None)
        version = became or version_name(content, base)
        if is_published(store, version):
            summary = {"version": version, "already_published": True}
            if online_missing(store, version):  # the registry says complete, Redis lost rows
                summary["restored"] = restore(store, version, progress=False, only_missing=True)
        else:
            guard = Guard(config.arm, config.max_drop, config.force) if config.arm else None
            kept = None if generator is None else keep_generator(store.config, version, adapter_of(generator))
            summary = publish_version(
                parquet_chunks(source), version, store, base, str(source), data_version=data_version, guard=guard,
                content=content, generator=kept,
            )  # fmt: skip
        held = None if config.arm is None else frozen_by(store.feast, config.arm)
        if held is not None:  # a running experiment's treatment stays what it started with
            summary["arm"] = {"arm": config.arm, "version": arm_version(store, config.arm), "changed": False}
            summary["arm"]["frozen_by"] = held
        elif config.arm is not None:
            summary["arm"] = assign(store, config.arm, version)
        if config.keep_versions is not None:
            summary["pruned"] = prune(store, config.keep_versions)
    summary["data_version"] = data_version  # what the report names beside the version
    with atomic_dir(output) as tmp:
        Published(tmp).summary.write_text(json.dumps(summary, indent=2))
    return summary


def current_generator(config: FeaturesConfig, output: str | Path) -> str:
    """The refresh run's G: the adapter that wrote the version `config.arm` reads, as a
    CurrentGenerator (with that version's name beside it, which the refresh's publish carries from);
    returns the version."""
    store = open_store(config.store)
    version = arm_version(store, config.arm) if config.arm else None
    if version is None:
        raise StoreError(f"arm {config.arm!r} reads no version: the refresh needs one retrain run to publish first")
    with atomic_dir(output) as tmp:
        fetch_generator(store.config, version_tags(store, version), version, CurrentGenerator(tmp).adapter)
        CurrentGenerator(tmp).version.write_text(version)
    return version
