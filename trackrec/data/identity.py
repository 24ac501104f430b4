"""The identity of a run's input data: what KFP's cache keys prepare_data on, and what the dataset,
the published feature version and the report record as their data version.

A local file or folder is hashed by content; an S3 object by what S3 says of it (ETag, size and,
in a versioned bucket, the version id), without downloading it. A log that grows in place gets a
new identity; an unchanged one keeps its identity, so the recurring run is answered from the cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from trackrec.errors import DataError
from trackrec.hashing import update_from_file


def _local(location: Path, digest) -> None:
    if location.is_file():
        update_from_file(digest, location)
        return
    if not location.is_dir():
        raise DataError(str(location), "not found")
    for path in sorted(p for p in location.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(location).as_posix()}\0".encode())
        update_from_file(digest, path)


def _s3(uri: str, digest) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from trackrec.artifacts.s3 import client, split_uri

    s3 = client()
    bucket, key = split_uri(uri)
    try:
        if not uri.endswith("/"):
            head = s3.head_object(Bucket=bucket, Key=key)
            digest.update(f"{head['ETag']}\0{head['ContentLength']}\0{head.get('VersionId', '')}".encode())
            return
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        for item in sorted((i for page in pages for i in page.get("Contents", [])), key=lambda i: i["Key"]):
            digest.update(f"{item['Key']}\0{item['ETag']}\0{item['Size']}\0".encode())
    except (BotoCoreError, ClientError) as error:
        raise DataError(uri, f"cannot identify the data: {error}") from error


def data_identity(locations: list[str]) -> str:
    """A short content identity of the files, folders or s3:// objects (a prefix ends with /)."""
    digest = hashlib.sha256()
    for location in locations:
        digest.update(f"{location}\0".encode())
        if location.startswith("s3://"):
            _s3(location, digest)
        else:
            _local(Path(location), digest)
    return digest.hexdigest()[:16]
