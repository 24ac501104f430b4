"""Content hashes of files, read in chunks (model weights and logs do not fit in memory)."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 8 * 1024 * 1024


def update_from_file(digest, path: str | Path) -> None:
    """Feed `path`'s bytes to a hashlib `digest`."""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    update_from_file(digest, path)
    return digest.hexdigest()
