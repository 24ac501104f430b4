"""The generator that wrote a feature version, kept beside the version's offline rows.

A version is a set of snapshots written by one G. The refresh run (summarise active users as of
now, publish) must write its new snapshots with that same G, so the retrain run's publish keeps
G(T)'s adapter at `<offline root>/generators/<version>` and names it in the version's tags; the
refresh reads it back from the version its arm reads. The location is the store's, from the
deployment's settings, never a run parameter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.features.store import OpenedStore, StoreConfig, StoreError

TAG = "generator"  # the version tag that names it


def generator_uri(config: StoreConfig, version: str) -> str:
    return f"{config.offline_root}/generators/{version}"


def keep_generator(config: StoreConfig, version: str, adapter: str | Path) -> str:
    """Copy the adapter folder to the version's generator location; returns that location."""
    uri = generator_uri(config, version)
    if uri.startswith("s3://"):
        from trackrec.artifacts.s3 import client, upload_dir

        upload_dir(client(config.s3_endpoint), adapter, uri)
    else:
        with atomic_dir(uri) as tmp:
            shutil.copytree(adapter, tmp, dirs_exist_ok=True)
    return uri


def fetch_generator(store: OpenedStore, tags: dict[str, str], version: str, output: str | Path) -> Path:
    """The adapter that wrote `version` (its tags), copied into `output`."""
    uri = tags.get(TAG)
    if not uri:
        raise StoreError(
            f"version {version!r} names no generator (published without one): run the retrain pipeline once"
        )
    if uri.startswith("s3://"):
        from trackrec.artifacts.s3 import client, download_dir

        with atomic_dir(output) as tmp:
            if download_dir(client(store.config.s3_endpoint), uri, tmp) == 0:
                raise StoreError(f"the generator of version {version!r} is missing at {uri}")
    else:
        if not Path(uri).is_dir():
            raise StoreError(f"the generator of version {version!r} is missing at {uri}")
        with atomic_dir(output) as tmp:
            shutil.copytree(uri, tmp, dirs_exist_ok=True)
    return Path(output)
