"""Stage prepare_data: read a source, write canonical train/valid/test samples and the item table."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from trackrec.data.dataset import DataConfig, Dataset, build_dataset
from trackrec.timing import work_begins


def _fetched(config: DataConfig, folder: Path) -> DataConfig:
    """`config` with its s3:// data folder or log downloaded (checked) under `folder`."""
    remote_root = bool(config.root and config.root.startswith("s3://"))
    remote_log = bool(config.path and config.path.startswith("s3://"))
    if not (remote_root or remote_log):
        return config  # local files: boto3 is not even imported
    from trackrec.artifacts.s3 import client, download, download_dir  # endpoint and keys from AWS_* variables

    changes = {}
    if remote_root:
        download_dir(client(), config.root, folder / "root")
        changes["root"] = str(folder / "root")
    if remote_log:
        download(client(), config.path, folder / "log.parquet")
        changes["path"] = str(folder / "log.parquet")
    return dataclasses.replace(config, **changes)


def prepare_data(config: DataConfig, output: str | Path) -> Dataset:
    """Build the dataset (from local files or s3://) and write it to `output` whole or not at all."""
    work_begins()
    with tempfile.TemporaryDirectory(prefix="trackrec-data-") as folder:
        dataset = build_dataset(_fetched(config, Path(folder)))
    dataset.save(output)
    return dataset
