"""A/B arms over the store's versions: which complete version (and CTR/CVR model) each arm reads,
assign, promote, roll back (any number of steps), each arm's history, and the guard that refuses a
version dropping too many of an arm's users.

An arm's service (trackrec/features/definitions.py: `arm_service`) moves to a version only once
that version is complete and the online store serves every one of its users as published
(trackrec/features/versions.py: `require_online`); an arm a running experiment holds stays where it
is unless forced. Every change holds the store's writer lease (trackrec/features/lease.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from trackrec.features import definitions, lease
from trackrec.features.offline import read_column
from trackrec.features.store import OpenedStore, StoreError
from trackrec.features.versions import complete_view, completion_mark, find_service, now, require_online


@dataclass(frozen=True)
class Guard:
    """Refuse a version that would drop more than `max_drop` of the users `arm` reads, unless `force`:
    `versions.publish(..., guard=Guard(...))` calls it with the new version's users."""

    arm: str
    max_drop: float
    force: bool = False

    def __call__(self, store: OpenedStore, user_ids: pd.Index) -> None:
        current = arm_version(store, self.arm)
        if current is None or self.force:
            return
        path = complete_view(store.feast, current).batch_source.path
        reading = pd.Index(read_column(path, "user_id", store.config.s3_endpoint).unique())
        dropped = reading.difference(user_ids)
        if len(dropped) > self.max_drop * len(reading):
            raise StoreError(
                f"the new version would drop {len(dropped)} of the {len(reading)} users arm {self.arm!r} reads "
                f"(over {self.max_drop:.0%}): publish with force to accept"
            )


def _arm_service(feast, arm: str):
    return find_service(feast, definitions.arm_service_name(arm))


def arm_version(store: OpenedStore, arm: str) -> str | None:
    service = _arm_service(store.feast, arm)
    return None if service is None else service.tags["version"]


def arm_model(store: OpenedStore, arm: str) -> str | None:
    """The CTR/CVR model that goes with the version `arm` reads (trained on it); None where none was
    named (a ranker must not score an arm's features with a model trained on another version)."""
    service = _arm_service(store.feast, arm)
    return None if service is None else service.tags.get("model") or None


def _arm_state(feast, arm: str) -> tuple[list[str], list[str], list[dict]]:
    """The versions `arm` can roll back through (the last is read now), the model of each, its change log."""
    service = _arm_service(feast, arm)
    return ([], [], []) if service is None else definitions.arm_state(service)


def _point(store, arm: str, version: str, stack: list[str], log: list[dict], action: str, models: list[str]) -> dict:
    feast = store.feast
    view = require_online(store, version)
    data_version = completion_mark(feast, version).tags.get("data_version", "unknown")
    entry = {"version": version, "model": models[-1], "action": action, "at": now(), "by": lease.actor()}
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
    stack, models, log = _arm_state(feast, arm)
    if stack and stack[-1] == version and model in (None, models[-1]):
        require_online(store, version)
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
    stack, models, log = _arm_state(store.feast, arm)
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
    if _arm_service(store.feast, arm) is None:
        raise StoreError(f"arm {arm!r} reads no version")
    return _arm_state(store.feast, arm)[2]
