"""Stage prepare_data: read a source, write canonical train/valid/test samples and the item table."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.data.config import DataConfig
from trackrec.data.dataset import Dataset, save_id_maps
from trackrec.data.identity import data_identity
from trackrec.data.sources import build_dataset
from trackrec.paths import data_dir
from trackrec.timing import work_begins


def _remote(uri: str | None) -> bool:
    return bool(uri and uri.startswith("s3://"))


def _fetched(config: DataConfig, folder: Path) -> DataConfig:
    """`config` with its s3:// data folder, log or id maps downloaded (checked) under `folder`."""
    if not (_remote(config.root) or _remote(config.path) or _remote(config.id_map)):
        return config  # local files: boto3 is not even imported
    from trackrec.artifacts.s3 import client, download, download_dir  # endpoint and keys from AWS_* variables

    changes = {}
    if _remote(config.root):
        download_dir(client(), config.root, folder / "root")
        changes["root"] = str(folder / "root")
    if _remote(config.path) and config.path.endswith("/"):  # a prefix of parquet parts
        download_dir(client(), config.path, folder / "log")
        changes["path"] = str(folder / "log")
    elif _remote(config.path):
        download(client(), config.path, folder / "log.parquet")
        changes["path"] = str(folder / "log.parquet")
    if _remote(config.id_map):
        download_dir(client(), config.id_map, folder / "id_map")  # none yet on a first run
        changes["id_map"] = str(folder / "id_map")
    return dataclasses.replace(config, **changes)


def _keep_id_maps(dataset: Dataset, destination: str) -> None:
    """Write the extended id maps back where the next run reads them (before the dataset that uses
    them: maps that run ahead only hold more users)."""
    if _remote(destination):
        from trackrec.artifacts.s3 import client, upload_dir

        with tempfile.TemporaryDirectory(prefix="trackrec-ids-") as folder:
            save_id_maps(dataset.id_maps, Path(folder))
            upload_dir(client(), folder, destination)
        return
    with atomic_dir(destination) as tmp:
        save_id_maps(dataset.id_maps, tmp)


def data_version(config: DataConfig) -> str:
    """The identity of the data `config` reads (the log, or the source's folder), by content."""
    if config.reads_log:
        return data_identity([config.path])
    root = config.root or str(data_dir(None))
    return data_identity([root if not _remote(root) else root.rstrip("/") + "/"])


def prepare_data(config: DataConfig, output: str | Path, version: str | None = None) -> Dataset:
    """Build the dataset (from local files or s3://) and write it to `output` whole or not at all;
    `version`: the data's identity, recorded in the dataset's meta."""
    work_begins()
    with tempfile.TemporaryDirectory(prefix="trackrec-data-") as folder:
        dataset = build_dataset(_fetched(config, Path(folder)))
    dataset.meta["data_version"] = version or data_version(config)
    if config.id_map and dataset.id_maps:
        _keep_id_maps(dataset, config.id_map)
    dataset.save(output)
    return dataset
