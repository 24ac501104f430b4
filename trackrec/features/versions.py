"""Versioned publishing for A/B arms: publish, assign an arm, promote, roll back (any number of
steps), list versions and arms, read, restore online rows, prune old versions.

Readers only ever go through a complete version: an arm's service moves to a version after that
version's service (its completion mark) exists, and only while the online store serves every one
of the version's users as published (trackrec/features/online_rows.py). A publish whose online
writes fail (a full Redis) removes the rows it wrote; one killed midway leaves its view half
written but unnamed by any arm or completion mark: publishing the same version again removes that
attempt, online rows included, and `prune` sweeps it. Every change holds the store's writer lease
(trackrec/features/lease.py): one writer at a time, each reading the registry afresh.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.errors import DataError
from trackrec.features import definitions, lease, online_rows
from trackrec.features.generators import TAG as GENERATOR_TAG
from trackrec.features.offline import located, parquet_writer, read_batches, read_column
from trackrec.features.online_rows import no_snapshots, snapshots_of
from trackrec.features.store import OpenedStore, StoreConfig, StoreError
from trackrec.features.vectors import checked_vectors

_COLUMNS = ("user_id", "as_of", "reccot", "iteration", "embedding")


def _service(feast, name: str):
    from feast.errors import FeatureServiceNotFoundException

    try:
        return feast.get_feature_service(name)
    except FeatureServiceNotFoundException:
        return None


def _version_service(feast, version: str):
    """The completion mark of `version`; an incomplete or unknown version is an error."""
    service = _service(feast, definitions.view_name(version))
    if service is None:
        raise StoreError(f"version {version!r} is not a complete published version")
    return service


def _require_complete(feast, version: str):
    _version_service(feast, version)
    return feast.get_feature_view(definitions.view_name(version))


Chunks = Callable[[], Iterator[pd.DataFrame]]  # a table, read again a chunk at a time for each pass


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
    guard: Guard | None = None,
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
    guard: refuse a version that would drop more than a share of the users an arm reads. A killed
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
        if _service(feast, view_name) is not None:
            raise StoreError(f"version {version!r} is already published; readers may be on it: publish a new version")
        old_path = None if carry_from is None else _require_complete(feast, carry_from).batch_source.path
        if generator is None and carry_from is not None:  # the same G wrote the new snapshots (a refresh)
            generator = _version_service(feast, carry_from).tags.get(GENERATOR_TAG) or None
        carried = _keys(no_snapshots() if old_path is None else snapshots_of(old_path, config)).difference(keys)
        if guard is not None:
            _check_drop(store, guard, pd.Index(keys.get_level_values(0)).append(pd.Index(carried.get_level_values(0))))
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
        provenance = {"published_at": _now(), "data_version": data_version or "unknown"}
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


def _users_of(path: str, config: StoreConfig) -> pd.Index:
    return pd.Index(read_column(path, "user_id", config.s3_endpoint).unique())


@dataclass(frozen=True)
class Guard:
    """Refuse a version that would drop more than `max_drop` of the users `arm` reads, unless `force`."""

    arm: str
    max_drop: float
    force: bool = False


def _check_drop(store: OpenedStore, guard: Guard, user_ids: pd.Index) -> None:
    current = arm_version(store, guard.arm)
    if current is None or guard.force:
        return
    reading = _users_of(_require_complete(store.feast, current).batch_source.path, store.config)
    dropped = reading.difference(user_ids)
    if len(dropped) > guard.max_drop * len(reading):
        raise StoreError(
            f"the new version would drop {len(dropped)} of the {len(reading)} users arm {guard.arm!r} reads "
            f"(over {guard.max_drop:.0%}): publish with force to accept"
        )


def _view(feast, name: str):
    from feast.errors import FeatureViewNotFoundException

    try:
        return feast.get_feature_view(name)
    except FeatureViewNotFoundException:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")  # orders versions published in one second


def version_tags(store: OpenedStore, version: str) -> dict[str, str]:
    """A complete version's tags: rows, published_at, data_version, content, base, generator."""
    return dict(_version_service(store.feast, version).tags)


def is_published(store: OpenedStore, version: str) -> bool:
    return _service(store.feast, definitions.view_name(version)) is not None


def online_missing(store: OpenedStore, version: str) -> int:
    """How many of a complete version's users the online store does not serve as published (a Redis
    that lost rows): every user is checked."""
    return len(online_rows.missing(store.feast, _require_complete(store.feast, version), store.config)[0])


def _require_online(store: OpenedStore, version: str):
    """The view of `version`, which an arm moves to only while every one of its users is served as
    published."""
    view = _require_complete(store.feast, version)
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
        view = _require_complete(store.feast, version)
        users = online_rows.missing(store.feast, view, store.config)[0] if only_missing else None
        with online_rows.failing_as(f"restore {version}"):
            written = online_rows.write(store.feast, view, store.config, f"restore {version}", progress, users)
        return {"version": version, "users": written}


def arm_version(store: OpenedStore, arm: str) -> str | None:
    service = _service(store.feast, definitions.arm_service_name(arm))
    return None if service is None else service.tags["version"]


def arm_model(store: OpenedStore, arm: str) -> str | None:
    """The CTR/CVR model that goes with the version `arm` reads (trained on it); None where none was
    named (a ranker must not score an arm's features with a model trained on another version)."""
    service = _service(store.feast, definitions.arm_service_name(arm))
    return None if service is None else service.tags.get("model") or None


def _arm_state(feast, arm: str) -> tuple[list[str], list[dict]]:
    """The versions `arm` can roll back through (the last is read now) and its change log."""
    service = _service(feast, definitions.arm_service_name(arm))
    if service is None:
        return [], []
    return json.loads(service.tags.get("stack", "[]")), json.loads(service.tags.get("log", "[]"))


def _arm_models(feast, arm: str, depth: int) -> list[str]:
    """The model of each version in the arm's stack ("" where none was named, or before models were kept)."""
    service = _service(feast, definitions.arm_service_name(arm))
    models = [] if service is None else json.loads(service.tags.get("models", "[]"))
    return [""] * (depth - len(models)) + models[-depth:] if depth else []


def _point(store, arm: str, version: str, stack: list[str], log: list[dict], action: str, models: list[str]) -> dict:
    feast = store.feast
    view = _require_online(store, version)
    data_version = _version_service(feast, version).tags.get("data_version", "unknown")
    entry = {"version": version, "model": models[-1], "action": action, "at": _now(), "by": lease.actor()}
    entry["data_version"] = data_version
    lease.confirm(store)
    feast.apply([definitions.arm_service(arm, view, stack, [*log, entry], models)])
    previous = stack[-2] if len(stack) > 1 else None
    return {"arm": arm, "version": version, "model": models[-1] or None, "previous": previous, "changed": True}


def _unfrozen(feast, arm: str, force: bool) -> None:
    """Refuse to move an arm a running experiment holds (its treatment is frozen), unless forced."""
    held = definitions.experiment_holding(feast, arm)
    if held and not force:
        raise StoreError(
            f"arm {arm!r} is frozen by running experiment {held!r}: stop it first (`trackrec experiment stop`) "
            "or pass force"
        )


def assign(store: OpenedStore, arm: str, version: str, model: str | None = None, force: bool = False) -> dict:
    """Point `arm` at a complete `version` and the CTR/CVR `model` trained on it (none: the arm names
    no model, or keeps its own if the version is unchanged); the pairs it read before stay for
    rollback. Assigning what it reads changes nothing. Refused on an arm a running experiment holds,
    and on a version whose online rows are gone."""
    with lease.writer(store, f"assign {arm}"):
        return _assign(store, arm, version, model=model, force=force)


def _assign(store, arm: str, version: str, action: str = "assign", model: str | None = None, force: bool = False):
    feast = store.feast
    stack, log = _arm_state(feast, arm)
    models = _arm_models(feast, arm, len(stack))
    if stack and stack[-1] == version and model in (None, models[-1]):
        _require_online(store, version)
        previous = stack[-2] if len(stack) > 1 else None
        return {"arm": arm, "version": version, "model": models[-1] or None, "previous": previous, "changed": False}
    _unfrozen(feast, arm, force)
    kept = models[-1] if stack and stack[-1] == version and model is None else ""
    return _point(store, arm, version, [*stack, version], log, action, [*models, model or kept])


def promote(
    store: OpenedStore, source_arm: str = "candidate", target_arm: str = "control", force: bool = False
) -> dict:
    """The target arm reads what the source arm reads: its version and its model, together."""
    with lease.writer(store, f"promote {source_arm} to {target_arm}"):
        version = arm_version(store, source_arm)
        if version is None:
            raise StoreError(f"arm {source_arm!r} reads no version; assign one first")
        model = arm_model(store, source_arm) or ""
        return _assign(store, target_arm, version, f"promote from {source_arm}", model=model, force=force)


def rollback(store: OpenedStore, arm: str = "control", to: str | None = None, force: bool = False) -> dict:
    """Point `arm` back at the version it read before, with that version's model (or at `to`, one
    it read earlier). Refused where that version's online rows are gone."""
    with lease.writer(store, f"rollback {arm}"):
        return _rollback(store, arm, to, force)


def _rollback(store: OpenedStore, arm: str, to: str | None, force: bool) -> dict:
    stack, log = _arm_state(store.feast, arm)
    models = _arm_models(store.feast, arm, len(stack))
    if to is None:
        if len(stack) < 2:
            raise StoreError(f"arm {arm!r} has no earlier version to roll back to")
        depth = len(stack) - 1
    elif to in stack[:-1]:
        depth = len(stack) - 1 - stack[::-1].index(to, 1) + 1
    else:
        raise StoreError(f"arm {arm!r} never read version {to!r} before: see `trackrec features history`")
    _unfrozen(store.feast, arm, force)
    return _point(store, arm, stack[depth - 1], stack[:depth], log, "rollback", models[:depth])


def history(store: OpenedStore, arm: str) -> list[dict]:
    """Every change of `arm`, oldest first: version, action, when, by whom, from which data version."""
    if _service(store.feast, definitions.arm_service_name(arm)) is None:
        raise StoreError(f"arm {arm!r} reads no version")
    return _arm_state(store.feast, arm)[1]


def listing(store: OpenedStore) -> dict[str, list[dict]]:
    """From the registry alone: every version, newest first (complete, or a killed attempt: its view
    without its completion mark; its tags; which arms read it), and every arm (the version it reads,
    the ones it can roll back to, newest first, and its last change)."""
    feast = store.feast
    services = {service.name: service for service in feast.list_feature_services()}
    arms = []
    for arm in sorted(name.removeprefix("ctr_") for name in services if name.startswith("ctr_")):
        stack, log = _arm_state(feast, arm)
        last = log[-1] if log else {}
        change = f"{last['action']} at {last['at']} by {last['by']}" if last else ""
        model = services[f"ctr_{arm}"].tags.get("model", "")
        arms.append(
            {"arm": arm, "version": stack[-1], "model": model, "rollback": stack[-2::-1], "last_change": change}
        )
    versions = []
    for view in feast.list_feature_views():
        if not view.name.startswith("reccot_") or "version" not in view.tags:
            continue
        version, service = view.tags["version"], services.get(view.name)
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
        complete = [  # versions' completion marks (an experiment's service has no version tag)
            s for s in services.values() if "version" in s.tags and s.name == definitions.view_name(s.tags["version"])
        ]
        protected = {v for name in services if name.startswith("ctr_") for v in _arm_state(feast, name[4:])[0]}
        newest_first = sorted(complete, key=lambda s: s.tags.get("published_at", ""), reverse=True)
        doomed = [(s.tags["version"], [s, feast.get_feature_view(s.name)]) for s in newest_first[keep:]]
        doomed += [
            (view.tags["version"], [view])
            for view in feast.list_feature_views()
            if view.name.startswith("reccot_") and "version" in view.tags and view.name not in services
        ]
        deleted = []
        for version, objects in doomed:
            if version not in protected:
                lease.confirm(store)
                feast.apply([], objects_to_delete=objects, partial=False)
                deleted.append(version)
        return deleted


def read(feast, user_ids: list[int], version: str | None = None, arm: str = "control") -> pd.DataFrame:
    """Online features of `user_ids` from `version`, or from what `arm` reads: each user's newest
    snapshot, with its as_of; a user without one reads None, and one whose newest is older than the
    view's TTL reads None for its embedding and RecCoT (its version and as_of stay, to say why).
    `feast`: a FeatureStore (a reader's `open_repo`, or an opened store's `.feast`)."""
    if version is not None:
        service = _version_service(feast, version)
    else:
        service = _service(feast, definitions.arm_service_name(arm))
        if service is None:
            raise StoreError(f"arm {arm!r} reads no version; assign one with `trackrec features assign`")
    result = feast.get_online_features(features=service, entity_rows=[{"user_id": int(u)} for u in user_ids])
    frame = pd.DataFrame(result.to_dict())
    ttl = feast.get_feature_view(service.feature_view_projections[0].name).ttl
    if ttl and ttl.total_seconds() > 0:  # Feast's online read does not apply it: a stale RecCoT is not served
        age = datetime.now(UTC).timestamp() - frame.as_of.astype("float64")
        stale = (age > ttl.total_seconds()).to_numpy()
        frame.loc[stale, ["embedding", "reccot"]] = None
    frame["embedding"] = [None if v is None else np.asarray(v, dtype=np.float32) for v in frame.embedding]
    return frame
