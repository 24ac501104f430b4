"""Stage prepare_data: read a source, write canonical train/valid/test samples and the item table;
in one pass, or fanned out over user shards (plan, one task per shard, join) for a log larger than a
pod (trackrec/data/log_shards.py)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.data.config import DataConfig
from trackrec.data.dataset import Dataset, load_id_maps, save_id_maps
from trackrec.data.identity import data_identity
from trackrec.data.log_shards import ShardPlan, plan_log_shards
from trackrec.data.schema import SPLITS
from trackrec.data.sources import build_dataset, require_splits
from trackrec.errors import DataError
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


def _keep_id_maps(id_maps: dict, destination: str) -> None:
    """Write the extended id maps back where the next run reads them (before the dataset that uses
    them: maps that run ahead only hold more users)."""
    if _remote(destination):
        from trackrec.artifacts.s3 import client, upload_dir

        with tempfile.TemporaryDirectory(prefix="trackrec-ids-") as folder:
            save_id_maps(id_maps, Path(folder))
            upload_dir(client(), folder, destination)
        return
    with atomic_dir(destination) as tmp:
        save_id_maps(id_maps, tmp)


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
        _keep_id_maps(dataset.id_maps, config.id_map)
    dataset.save(output)
    return dataset


def plan_prepare(config: DataConfig, output: str | Path, shards: int, version: str | None = None) -> list[int]:
    """The user shards prepare_shard runs (up to `shards`; one, the whole source, unless it is a
    parquet log) with the whole log's id maps, written to `output`; returns the shard indices.
    version: the data version the pipeline keyed its cache on, which the shards check the log against."""
    work_begins()
    plan = ShardPlan()
    if config.source == "behaviour-log":
        log = version or data_version(config)  # before the read: a later change fails every shard's check
        with tempfile.TemporaryDirectory(prefix="trackrec-data-") as folder:
            fetched = _fetched(config, Path(folder))
            known = load_id_maps(Path(fetched.id_map)) if fetched.id_map else {}
            plan = dataclasses.replace(plan_log_shards(Path(fetched.path), shards, known), log=log)
    with atomic_dir(output) as tmp:
        plan.save(tmp)
    return list(range(plan.count))


def prepare_shard(plan: str | Path, config: DataConfig, output: str | Path, shard: int) -> Dataset:
    """Shard `shard` of the plan: its users' samples, prepared as one pass would, written to `output`."""
    work_begins()
    shard_plan = ShardPlan.load(plan)
    users = shard_plan.shard(shard)
    with tempfile.TemporaryDirectory(prefix="trackrec-data-") as folder:
        dataset = build_dataset(_fetched(config, Path(folder)), users)
    if users is not None:
        _require_planned_log(config, shard_plan.log)
    dataset.save(output)
    return dataset


def _require_planned_log(config: DataConfig, planned: str) -> None:
    """After a shard read its users' events: the log is still the one its plan read (checked after,
    so a change during the read is seen too; equal event counts are not enough)."""
    now = data_version(config)
    if now != planned:
        raise DataError(
            config.path, f"the log changed after it was planned (identity {planned or 'unknown'} then, {now} now): "
            "plan again"
        )  # fmt: skip


def join_prepared(
    plan: str | Path, parts: list[str | Path], config: DataConfig, output: str | Path, version: str | None = None
) -> Dataset:
    """The shards as the one dataset prepare_data writes: splits checked on the whole, the plan's id
    maps kept where the next run reads them."""
    work_begins()
    shard_plan = ShardPlan.load(plan)
    datasets = [Dataset.open(part) for part in parts]
    if len(datasets) != shard_plan.count:
        raise DataError(str(plan), f"planned {shard_plan.count} shards, got {len(datasets)} to join")
    require_splits({split: sum(d.meta["rows"][split] for d in datasets) for split in SPLITS}, config.source)
    first = datasets[0].meta
    meta = {"source": first["source"], "config": first["config"], "data_version": version or data_version(config)}
    if "dropped_duplicates" in first:
        meta["dropped_duplicates"] = sum(d.meta["dropped_duplicates"] for d in datasets)
    id_maps = shard_plan.id_maps or datasets[0].id_maps
    if config.id_map and id_maps:
        _keep_id_maps(id_maps, config.id_map)
    return Dataset.joined(datasets, output, meta, id_maps)
