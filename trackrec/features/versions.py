"""The store's versions: publish one (its offline rows, its online rows, its completion mark last),
restore its online rows, list versions and arms, prune old versions. Which version an A/B arm reads
is trackrec/features/arms.py's; a reader's online read is trackrec/features/reading.py's.

Readers only ever go through a complete version: an arm's service moves to a version after that
version's service (its completion mark) exists, and only while the online store serves every one
of the version's users as published (`require_online`, with trackrec/features/online_rows.py's counts). A
publish whose online writes fail (a full Redis) removes the rows it wrote; one killed midway leaves its view half
written but unnamed by any arm or completion mark: publishing the same version again removes that
attempt, online rows included, and `prune` sweeps it. Every change holds the store's writer lease
(trackrec/features/lease.py): one writer at a time, each reading the registry afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.errors import DataError
from trackrec.features import definitions, lease, online_rows
from trackrec.features.generators import TAG as GENERATOR_TAG
from trackrec.features.offline import located, parquet_writer, read_batches
from trackrec.features.online_rows import no_snapshots, snapshots_of
from trackrec.features.store import OpenedStore, StoreConfig, StoreError
from trackrec.features.vectors import checked_vectors

_COLUMNS = ("user_id", "as_of", "reccot", "iteration", "embedding")


def find_service(feast, name: str):
    """The FeatureService `name`, or None."""
    from feast.errors import FeatureServiceNotFoundException

    try:
        return feast.get_feature_service(name)
    except FeatureServiceNotFoundException:
        return None


def completion_mark(feast, version: str):
    """The completion mark of `version`; an incomplete or unknown version is an error."""
    service = find_service(feast, definitions.view_name(version))
    if service is None:
        raise StoreError(f"version {version!r} is not a complete published version")
    return service


def complete_view(feast, version: str):
    """The view of a complete `version`; an incomplete or unknown version is an error."""
    completion_mark(feast, version)
    return feast.get_feature_view(definitions.view_name(version))


Chunks = Callable[[], Iterator[pd.DataFrame]]  # a table, read again a chunk at a time for each pass
Check = Callable[[OpenedStore, pd.Index], None]  # raises to refuse a version of these users (arms.Guard)


def table_chunks(table: pd.DataFrame) -> Chunks:
    return lambda: iter([table])


def parquet_chunks(path: str | Path) -> Chunks:
    """An embeddings parquet, BATCH rows at a time: publish's memory does not grow with the users."""
    return lambda: read_batches(str(path), columns=list(_COLUMNS))


def _rows(table: pd.DataFrame, config: StoreConfig, version: str, source: str, first_row: int) -> pd.DataFrame:
    """The offline rows of a chunk of snapshots: Feast's event timestamp is each one's as_of (the time
    it summarises the user as of), so Feast's point-in-time join gives a sample the snapshot before it."""
    for column in _COLUMNS:
        if column not in table.columns:
            raise DataError(source, f"missing column '{column}'", field=column)
    vectors = checked_vectors(table, config.dim, source, first_row)
    as_of = table.as_of.astype("int64").to_numpy()
    return pd.DataFrame(
        {
            "user_id": table.user_id.astype("int64").to_numpy(),
            "as_of": as_of,
            "embedding": list(vectors),
            "reccot": table.reccot.astype(str).to_numpy(),
            "model_version": version,
            "iteration": table.iteration.astype("int64").to_numpy(),
            "event_timestamp": pd.to_datetime(as_of, unit="s", utc=True),
        }
    )


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame.user_id.to_numpy(np.int64), frame.as_of.to_numpy(np.int64)])


def _checked_keys(chunks: Chunks, config: StoreConfig, version: str, source: str) -> pd.MultiIndex:
    """Every chunk checked (columns, vector sizes, values, a snapshot repeated anywhere) before
    anything is written; the snapshots' (user_id, as_of), 16 bytes each."""
    keys, count = [], 0
    for chunk in chunks():
        keys.append(_rows(chunk, config, version, source, count)[["user_id", "as_of"]])
        count += len(chunk)
    frame = pd.concat(keys, ignore_index=True) if keys else no_snapshots()
    if frame.empty:  # a complete version of nobody: every reader of the arm would silently get zeros
        raise DataError(source, "no rows: a version must hold at least one user's vector")
    repeated = frame.duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        user, as_of = frame.user_id.iloc[row], frame.as_of.iloc[row]
        raise DataError(source, f"duplicate snapshot: user_id {user} as of {as_of}", row=row, field="as_of")
    return _keys(frame)


def publish(
    table: pd.DataFrame | Chunks,
    version: str,
    store: OpenedStore,
    carry_from: str | None = None,
    source: str = "embeddings",
    progress: bool = True,
    data_version: str | None = None,
    guard: Check | None = None,
    content: str | None = None,
    generator: str | None = None,
) -> dict:
    """Publish `table` (user_id, as_of, reccot, iteration, embedding: one row per snapshot; a frame or
    `parquet_chunks`) as `version`. The offline file keeps every snapshot (Feast's point-in-time
    join reads them); the online store gets each user's newest.

    carry_from: an earlier complete version whose snapshots absent from `table` are carried over
    (the recurring refresh summarises only active users, as of now, and keeps every older snapshot).
    content: the digest of the table it was published from (kept in its tags, with the base and
    `generator`, where the G that wrote the snapshots is kept: trackrec/features/generators.py;
    none: carry_from's).
    guard: called with the store and the new version's users (its own and those carried) before
    anything is written; it raises to refuse the version (arms.Guard: one that would drop more
    than a share of the users an arm reads). A killed
    attempt at `version` (its view without its completion mark) is removed, online rows included,
    before writing; online writes that fail (a full Redis) remove the rows they wrote. Everything is
    checked before anything is written; rows go through memory a chunk at a time.
    """
    chunks = table if callable(table) else table_chunks(table)
    config = store.config
    keys = _checked_keys(chunks, config, version, source)
    with lease.writer(store, f"publish {version}"):
        view_name = definitions.view_name(version)
        feast = store.feast
        if find_service(feast, view_name) is not None:
            raise StoreError(f"version {version!r} is already published; readers may be on it: publish a new version")
        old_path = None if carry_from is None else complete_view(feast, carry_from).batch_source.path
        if generator is None and carry_from is not None:  # the same G wrote the new snapshots (a refresh)
            generator = completion_mark(feast, carry_from).tags.get(GENERATOR_TAG) or None
        carried = _keys(no_snapshots() if old_path is None else snapshots_of(old_path, config)).difference(keys)
        if guard is not None:
            guard(store, pd.Index(keys.get_level_values(0)).append(pd.Index(carried.get_level_values(0))))
        killed = _view(feast, view_name)
        if killed is not None:
            lease.confirm(store)
            feast.apply([], objects_to_delete=[killed], partial=False)
        path = located(f"{config.offline_root}/{version}.parquet")
        with parquet_writer(path, config.s3_endpoint) as write:
            count = 0
            for chunk in chunks():
                write(_rows(chunk, config, version, source, count))
                count += len(chunk)
            for old in [] if old_path is None else read_batches(old_path, config.s3_endpoint):
                kept = old[_keys(old).isin(carried)]
                if len(kept):
                    write(kept.assign(model_version=version))
        view = definitions.version_view(version, path, config.s3_endpoint, config.ttl_days)
        lease.confirm(store)
        feast.apply([definitions.USER, view])
        rows = len(keys) + len(carried)
        try:
            users = online_rows.write(feast, view, config, f"publish {version}", progress)
        except Exception as error:
            fate = _remove_attempt(feast, view)
            found = online_rows.failure(error, f"publish {version}")
            if found is None:
                error.add_note(f"publish {version}: {fate}")
                raise
            raise StoreError(f"{found}; {fate}") from error
        provenance = {"published_at": now(), "data_version": data_version or "unknown"}
        provenance |= {"content": content or "unknown", "base": carry_from or "", GENERATOR_TAG: generator or ""}
        lease.confirm(store)
        feast.apply([definitions.version_service(view, rows, provenance)])  # the completion mark, last
        return {"version": version, "rows": rows, "users": users, "carried": len(carried), "offline": path}


def _remove_attempt(feast, view) -> str:
    """Remove a failed attempt's view and the online rows it wrote (Feast deletes a deleted view's
    rows: redis.py:263-310); where the store cannot now, they stay marked incomplete for `prune`."""
    try:
        feast.apply([], objects_to_delete=[view], partial=False)
    except Exception:  # noqa: BLE001 - the store failing again: the first error is the one to report
        return "its rows written so far stay, marked incomplete (`trackrec features prune` removes them)"
    return "its rows written so far were removed"


def _view(feast, name: str):
    from feast.errors import FeatureViewNotFoundException

    try:
        return feast.get_feature_view(name)
    except FeatureViewNotFoundException:
        return None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")  # orders versions published in one second


def version_tags(store: OpenedStore, version: str) -> dict[str, str]:
    """A complete version's tags: rows, published_at, data_version, content, base, generator."""
    return dict(completion_mark(store.feast, version).tags)


def is_published(store: OpenedStore, version: str) -> bool:
    return find_service(store.feast, definitions.view_name(version)) is not None


def online_missing(store: OpenedStore, version: str) -> int:
    """How many of a complete version's users the online store does not serve as published (a Redis
    that lost rows): every user is checked."""
    return len(online_rows.missing(store.feast, complete_view(store.feast, version), store.config)[0])


def require_online(store: OpenedStore, version: str):
    """The view of `version`, which an arm moves to only while every one of its users is served as
    published."""
    view = complete_view(store.feast, version)
    gone, users = online_rows.missing(store.feast, view, store.config)
    if len(gone):
        raise StoreError(
            f"version {version!r}: the online store does not serve {len(gone)} of its {users} users as published "
            f"(lost rows): restore them first (`trackrec features restore --version {version}`)"
        )
    return view


def restore(store: OpenedStore, version: str, progress: bool = True, only_missing: bool = False) -> dict:
    """Rebuild a complete version's online rows from its offline parquet (after Redis lost them);
    only_missing: only those of users the online store does not serve as published."""
    with lease.writer(store, f"restore {version}"):
        view = complete_view(store.feast, version)
        users = online_rows.missing(store.feast, view, store.config)[0] if only_missing else None
        with online_rows.failing_as(f"restore {version}"):
            written = online_rows.write(store.feast, view, store.config, f"restore {version}", progress, users)
        return {"version": version, "users": written}


def listing(store: OpenedStore) -> dict[str, list[dict]]:
    """From the registry alone: every version, newest first (complete, or a killed attempt: its view
    without its completion mark; its tags; which arms read it), and every arm (the version it reads,
    the ones it can roll back to, newest first, and its last change)."""
    feast = store.feast
    services = {service.name: service for service in feast.list_feature_services()}
    arms = []
    by_arm = {arm: service for service in services.values() if (arm := definitions.arm_of(service)) is not None}
    for arm, service in sorted(by_arm.items()):
        stack, _, log = definitions.arm_state(service)
        last = log[-1] if log else {}
        change = f"{last['action']} at {last['at']} by {last['by']}" if last else ""
        model = service.tags.get("model", "")
        arms.append(
            {"arm": arm, "version": stack[-1], "model": model, "rollback": stack[-2::-1], "last_change": change}
        )
    versions = []
    for view in feast.list_feature_views():
        if (version := definitions.version_of(view)) is None:
            continue
        service = services.get(view.name)
        tags = {} if service is None else service.tags
        entry = {"version": version, "complete": service is not None}
        entry |= {key: tags.get(key, "") for key in ("rows", "published_at", "data_version", GENERATOR_TAG, "base")}
        entry["read_by"] = [arm["arm"] for arm in arms if arm["version"] == version]
        versions.append(entry | {"offline": view.batch_source.path})
    return {"versions": sorted(versions, key=lambda v: v["published_at"], reverse=True), "arms": arms}


def prune(store: OpenedStore, keep: int) -> list[str]:
    """Delete all but the `keep` newest complete versions (view, service, online rows), never one an
    arm reads or can roll back to, and every incomplete one (a failed or killed attempt: no publish
    runs while prune holds the writer lease); returns the deleted versions."""
    if keep < 1:
        raise StoreError(f"keep: must be >= 1, got {keep}")
    with lease.writer(store, "prune"):
        feast = store.feast
        services = {s.name: s for s in feast.list_feature_services()}
        complete = [s for s in services.values() if definitions.version_of(s) is not None]  # completion marks
        arms = [s for s in services.values() if definitions.arm_of(s) is not None]
        protected = {version for arm in arms for version in definitions.arm_state(arm)[0]}  # reads, can roll back to
        newest_first = sorted(complete, key=lambda s: s.tags.get("published_at", ""), reverse=True)
        doomed = [(s.tags["version"], [s, feast.get_feature_view(s.name)]) for s in newest_first[keep:]]
        doomed += [
            (definitions.version_of(view), [view])
            for view in feast.list_feature_views()
            if definitions.version_of(view) is not None and view.name not in services
        ]
        deleted = []
        for version, objects in doomed:
            if version not in protected:
                lease.confirm(store)
                feast.apply([], objects_to_delete=objects, partial=False)
                deleted.append(version)
        return deleted
