"""The generator that wrote a feature version, kept beside the version's offline rows.

A version is a set of snapshots written by one G. The refresh run (summarise active users as of
now, publish) must write its new snapshots with that same G, so the retrain run's publish keeps
G(T)'s adapter at `<offline root>/generators/<version>` and a version's tag names the version that
keeps its G (itself, or for a refresh its base's). The tag holds a version name, never a location:
where G is read from is always the deployment's offline root, whatever the registry says.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.features.definitions import checked_name
from trackrec.features.store import StoreConfig, StoreError

TAG = "generator"  # the version tag: the version whose folder keeps the G


def generator_uri(config: StoreConfig, version: str) -> str:
    return f"{config.offline_root}/generators/{checked_name('version', version)}"


def keep_generator(config: StoreConfig, version: str, adapter: str | Path) -> str:
    """Copy the adapter folder to the version's generator location; returns the tag's value (the
    version)."""
    uri = generator_uri(config, version)
    if uri.startswith("s3://"):
        from trackrec.artifacts.s3 import client, upload_dir

        upload_dir(client(config.s3_endpoint), adapter, uri)
    else:
        with atomic_dir(uri) as tmp:
            shutil.copytree(adapter, tmp, dirs_exist_ok=True)
    return version


def fetch_generator(config: StoreConfig, tags: dict[str, str], version: str, output: str | Path) -> Path:
    """The adapter that wrote `version` (named by its tags), copied into `output`."""
    keeper = tags.get(TAG)
    if not keeper:
        raise StoreError(
            f"version {version!r} names no generator (published without one): run the retrain pipeline once"
        )
    uri = generator_uri(config, keeper)
    if uri.startswith("s3://"):
        from trackrec.artifacts.s3 import client, download_dir

        with atomic_dir(output) as tmp:
            if download_dir(client(config.s3_endpoint), uri, tmp) == 0:
                raise StoreError(f"the generator of version {version!r} is missing at {uri}")
    else:
        if not Path(uri).is_dir():
            raise StoreError(f"the generator of version {version!r} is missing at {uri}")
        with atomic_dir(output) as tmp:
            shutil.copytree(uri, tmp, dirs_exist_ok=True)
    return Path(output)
