"""The Feast objects: entity `user_id`, one FeatureView per published version, feature services.

A version's FeatureView `reccot_<version>` has its own offline file and its own online rows, so
publishing one never touches another. The FeatureService `reccot_<version>` is applied last, as
the mark that the version is complete; an arm's service `ctr_<arm>` names the version that arm's
CTR model reads, with the versions it can roll back through and its change log in its tags. What an
object is (a version's, an arm's) is read from its tags (`version_of`, `arm_of`), never from its name.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Float32, Int64, String

from trackrec.errors import ConfigError

USER = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="dense TrackRec user id")
HISTORY = 200  # changes of an arm kept in its log
ROLLBACK_DEPTH = 5  # versions an arm can roll back through: older ones may be pruned
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,62}$")
ARM_TAG = "arm"  # on an arm's service: the arm it is
_ARM_PREFIX = "ctr_"


def checked_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(kind, [f"{name!r}: use letters, digits and _ (up to 63), starting with a letter or digit"])
    return name


def view_name(version: str) -> str:
    return f"reccot_{checked_name('version', version)}"


def arm_service_name(arm: str) -> str:
    return f"{_ARM_PREFIX}{checked_name('arm', arm)}"


def version_of(feature_object: FeatureView | FeatureService) -> str | None:
    """The version whose view or completion mark `feature_object` is; None for any other (an arm's
    service names the version it reads in the same tag, under its own name)."""
    version = (feature_object.tags or {}).get("version")
    return version if version is not None and feature_object.name == view_name(version) else None


def arm_of(service: FeatureService) -> str | None:
    """The arm whose service `service` is; None for a version's or an experiment's."""
    tags = service.tags or {}
    if ARM_TAG not in tags and "stack" in tags:  # an arm's service written before the tag
        return service.name.removeprefix(_ARM_PREFIX)
    return tags.get(ARM_TAG)


def arm_state(service: FeatureService) -> tuple[list[str], list[str], list[dict]]:
    """What `arm_service` wrote: the versions the arm can roll back through (the last is read now),
    the model of each ("" where none was named, or before models were kept) and the change log."""
    tags = service.tags
    stack, models = json.loads(tags.get("stack", "[]")), json.loads(tags.get("models", "[]"))
    models = ([""] * len(stack) + models)[-len(stack) :] if stack else []
    return stack, models, json.loads(tags.get("log", "[]"))


def version_view(version: str, path: str, s3_endpoint: str | None, ttl_days: int | None = None) -> FeatureView:
    """A version's snapshots: event_timestamp is each one's as_of; a TTL (days) keeps a snapshot from
    being joined to samples, or served, once it is older than that (none: never)."""
    source = FileSource(
        name=f"{view_name(version)}_source",
        path=path,
        timestamp_field="event_timestamp",
        s3_endpoint_override=s3_endpoint,
    )
    return FeatureView(
        name=view_name(version),
        entities=[USER],
        ttl=timedelta(days=ttl_days or 0),  # Feast's 0: no expiry
        schema=[
            Field(name="embedding", dtype=Array(Float32)),
            Field(name="reccot", dtype=String),
            Field(name="model_version", dtype=String),
            Field(name="iteration", dtype=Int64),
            Field(name="as_of", dtype=Int64),  # Unix seconds: the summary knows the user's events up to then
        ],
        source=source,
        online=True,
        tags={"version": version},
    )


def version_service(view: FeatureView, rows: int, provenance: dict[str, str]) -> FeatureService:
    """A version's completion mark; `provenance`: when it was published, from which data version."""
    tags = {"version": view.tags["version"], "rows": str(rows)} | provenance
    return FeatureService(name=view.name, features=[view], tags=tags)


def arm_service(arm: str, view: FeatureView, stack: list[str], log: list[dict], models: list[str]) -> FeatureService:
    """What an arm reads: `view`, the versions it can roll back through (`stack`, its top is the
    one read now, at most ROLLBACK_DEPTH), the CTR/CVR model that goes with each (`models`, "" where
    none was named) and every change made to it (`log`, the latest HISTORY)."""
    tags = {
        ARM_TAG: arm,
        "version": view.tags["version"],
        "model": models[-1],
        "stack": json.dumps(stack[-ROLLBACK_DEPTH:]),
        "models": json.dumps(models[-ROLLBACK_DEPTH:]),
        "log": json.dumps(log[-HISTORY:]),
    }
    return FeatureService(name=arm_service_name(arm), features=[view], tags=tags)


EXPERIMENT_PREFIX = "exp_"  # an experiment's FeatureService (trackrec/experiments/registry.py writes it)


def experiment_holding(feast, arm: str) -> str | None:
    """The running experiment whose FeatureService names `arm` among its arms (tag `arms`), if any:
    its treatment is frozen."""
    for service in feast.list_feature_services():
        tags = service.tags or {}
        if service.name.startswith(EXPERIMENT_PREFIX) and tags.get("status") == "running":
            if arm in tags.get("arms", "").split(","):
                return tags.get("experiment")
    return None
