"""boto3 transfers with retries and integrity checks, for what components move themselves.

An object appears whole or not at all (S3's single PUT and multipart completion are atomic), carries
its SHA-256 and size in its metadata, and is checked against both after upload and after download;
a download lands in a temporary file renamed into place. Connection failures (a restarting server)
are retried by botocore with backoff; a checksum mismatch retries the whole transfer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from trackrec.atomic import atomic_file
from trackrec.errors import TrackRecError

ATTEMPTS = 3  # whole transfers, on an integrity mismatch
_CHUNK = 8 * 1024 * 1024


class ArtifactError(TrackRecError):
    """An S3 transfer that failed after its retries, or whose bytes do not match their checksum."""


def client(endpoint: str | None = None, attempts: int = 10):
    """An S3 client whose calls retry connection errors, throttling and 5xx (botocore 'standard' mode)."""
    session = boto3.session.Session()  # a fresh one: credentials are read from the environment now
    if session.get_credentials() is None:
        raise ArtifactError("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a Kubernetes Secret)")
    config = BotoConfig(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    return session.client("s3", endpoint_url=endpoint, config=config)


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ArtifactError(f"{uri!r} is not s3://bucket/key")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _failed(action: str, uri: str, error: Exception) -> ArtifactError:
    return ArtifactError(f"{action} {uri} failed: {error}")


def upload(s3, path: str | Path, uri: str) -> dict:
    """Upload one file; returns its size and sha256 as S3 reports them back."""
    path = Path(path)
    bucket, key = split_uri(uri)
    expected = {"size": path.stat().st_size, "sha256": sha256_of(path)}
    for _ in range(ATTEMPTS):
        try:
            s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": expected["sha256"]}})
            head = s3.head_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise _failed("upload to", uri, error) from error
        stored = {"size": head["ContentLength"], "sha256": head["Metadata"].get("sha256")}
        if stored == expected:
            return stored
    raise ArtifactError(f"upload to {uri}: stored {stored} != local {expected} after {ATTEMPTS} attempts")


def download(s3, uri: str, path: str | Path) -> dict:
    """Download one object into `path` (whole or not at all), checked against its size and sha256."""
    bucket, key = split_uri(uri)
    for _ in range(ATTEMPTS):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            with atomic_file(path) as tmp:
                s3.download_file(bucket, key, str(tmp))
                got = {"size": tmp.stat().st_size, "sha256": sha256_of(tmp)}
                expected = {"size": head["ContentLength"], "sha256": head["Metadata"].get("sha256", got["sha256"])}
                if got != expected:
                    raise _Mismatch(got, expected)
            return got
        except _Mismatch as mismatch:
            last = mismatch
        except (BotoCoreError, ClientError) as error:
            raise _failed("download of", uri, error) from error
    raise ArtifactError(f"download of {uri}: got {last.got} != stored {last.expected} after {ATTEMPTS} attempts")


class _Mismatch(Exception):
    def __init__(self, got: dict, expected: dict):
        self.got, self.expected = got, expected


def upload_dir(s3, folder: str | Path, prefix: str) -> int:
    """Every file under `folder` to `prefix/<relative path>`; returns the file count."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    for file in files:
        upload(s3, file, f"{prefix.rstrip('/')}/{file.relative_to(folder).as_posix()}")
    return len(files)


def download_dir(s3, prefix: str, folder: str | Path) -> int:
    """Every object under `prefix/` to `folder/<relative key>`, each checked; returns the object count."""
    bucket, key_prefix = split_uri(prefix.rstrip("/") + "/")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as error:
        raise _failed("listing of", prefix, error) from error
    for key in keys:
        download(s3, f"s3://{bucket}/{key}", Path(folder) / key[len(key_prefix) :])
    return len(keys)
