"""boto3 transfers with retries and integrity checks, for what components move themselves.

An object appears whole or not at all (S3's single PUT and multipart completion are atomic). An
upload asks S3 to verify a SHA-256 of every part it receives, and the checksum S3 then reports for
the object (computed from the bytes it stored) must equal ours; the object also carries our SHA-256
of the whole file in its metadata, which a download checks, landing in a temporary file renamed
into place. Connection failures (a restarting server) are retried by botocore with backoff; a
checksum mismatch retries the whole transfer. A listed key that would land outside the destination
folder (`..`, `//`, an absolute key) is refused.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from trackrec.atomic import atomic_file
from trackrec.errors import TrackRecError
from trackrec.hashing import sha256_of

ATTEMPTS = 3  # whole transfers, on an integrity mismatch
_PART = 64 * 1024 * 1024  # multipart part size, fixed so that the per-part (composite) checksum is ours to compute
_TRANSFER = TransferConfig(multipart_threshold=_PART, multipart_chunksize=_PART)


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


def _failed(action: str, uri: str, error: Exception) -> ArtifactError:
    return ArtifactError(f"{action} {uri} failed: {error}")


def s3_checksum(path: Path) -> str:
    """The ChecksumSHA256 S3 reports for `path` uploaded by `upload`: the SHA-256 of the bytes for a
    single PUT, the SHA-256 of the parts' SHA-256s for a multipart upload (base64, without `-N`)."""
    digests = []
    with open(path, "rb") as handle:
        while chunk := handle.read(_PART):
            digests.append(hashlib.sha256(chunk).digest())
    if len(digests) <= 1:
        whole = digests[0] if digests else hashlib.sha256(b"").digest()
        return base64.b64encode(whole).decode()
    return base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()


def upload(s3, path: str | Path, uri: str) -> dict:
    """Upload one file, S3 verifying the SHA-256 of what it receives; returns the size and sha256 stored."""
    path = Path(path)
    bucket, key = split_uri(uri)
    expected = {"size": path.stat().st_size, "sha256": sha256_of(path), "s3_checksum": s3_checksum(path)}
    for _ in range(ATTEMPTS):
        try:
            s3.upload_file(
                str(path),
                bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": expected["sha256"]}, "ChecksumAlgorithm": "SHA256"},
                Config=_TRANSFER,
            )
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except (BotoCoreError, ClientError) as error:
            raise _failed("upload to", uri, error) from error
        reported = head.get("ChecksumSHA256")
        if reported is None:
            raise ArtifactError(f"upload to {uri}: the S3 server reports no SHA-256 checksum of the stored bytes")
        stored = {
            "size": head["ContentLength"],
            "sha256": head["Metadata"].get("sha256"),
            "s3_checksum": reported.split("-")[0],
        }
        if stored == expected:
            return {"size": stored["size"], "sha256": stored["sha256"]}
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
    """Every object under `prefix/` to `folder/<relative key>`, each checked; returns the object count.
    Every key is checked to land inside `folder` before anything is downloaded."""
    bucket, key_prefix = split_uri(prefix.rstrip("/") + "/")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as error:
        raise _failed("listing of", prefix, error) from error
    targets = {key: _inside(Path(folder), key[len(key_prefix) :], f"s3://{bucket}/{key}") for key in keys}
    for key, target in targets.items():
        download(s3, f"s3://{bucket}/{key}", target)
    return len(keys)


def _inside(folder: Path, relative: str, uri: str) -> Path:
    """`folder/relative`, refusing a key whose parts are empty, `.` or `..` (it could land elsewhere)."""
    parts = relative.split("/")
    if relative.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in relative:
        raise ArtifactError(f"S3 key {uri!r} would be written outside {folder}: refusing the download")
    target = folder.joinpath(*parts)
    if not target.resolve().is_relative_to(folder.resolve()):
        raise ArtifactError(f"S3 key {uri!r} would be written outside {folder}: refusing the download")
    return target
