"""Where the RecCoT features live: a Feast repo folder (feature_store.yaml + registry), an online
store (SQLite by default, Redis in production) and an offline folder (local or s3://).

`open_store` first checks that Redis and S3 answer, so an unreachable store fails before anything
is written; a reader of the registry alone (history, list: Feast's services and views, never
online rows) opens it with `registry_only` and needs no Redis; every writer needs Redis for the
writer lease (trackrec/features/lease.py). The first
operation that needs the store writes feature_store.yaml, so `feast -c REPO serve` and the
`features get` command read the same store as the publisher.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from trackrec.atomic import atomic_file
from trackrec.config import TTL_DAYS, Config, Range, field
from trackrec.errors import TrackRecError
from trackrec.inert import inert
from trackrec.paths import feast_repo
from trackrec.reach import PASSWORD, parse_redis, path_problems, read_redis, url_problems

ONLINE_KINDS = ("sqlite", "redis")
# a publish or a read on a stalled Redis fails instead of hanging: set on Feast's connection where the
# config sets none (Feast passes them to redis.Redis: feast/infra/online_stores/redis.py:406-413)
REDIS_TIMEOUTS_S = {"socket_connect_timeout": 5, "socket_timeout": 30}
ERROR_CHARS = 300  # of a server's error text in a message


class StoreError(TrackRecError):
    """A feature store that cannot be reached or is not in the state an operation needs."""


@dataclass
class StoreConfig(Config):
    repo: str = field(
        str(feast_repo()),
        help="Feast repo folder: feature_store.yaml, registry, SQLite file; `trackrec run` puts one left unset "
        "in its run folder (<run dir>/feast)",
    )
    project: str = field("trackrec", help="Feast project name")
    online: str = field("sqlite", help=f"online store: one of {ONLINE_KINDS}")
    redis: str = field(
        "127.0.0.1:6379",
        help="Redis connection string (host:port[,password=...][,ssl=true]) when online: redis; "
        "write the password as ${REDIS_PASSWORD} to take it from the environment (a Secret)",
    )
    offline: str | None = field(None, help="offline parquet folder or s3://bucket/prefix; none: REPO/offline")
    registry: str | None = field(
        None, help="Feast registry: s3://bucket/key, shared by every pod of a cluster; none: REPO/registry.db"
    )
    s3_endpoint: str | None = field(None, help="S3-compatible endpoint URL; none: AWS's (credentials from AWS_*)")
    dim: int = field(384, help="size of every published vector (the encoder's)", range=Range(1, 65_536))
    ttl_days: int | None = field(
        None,
        help="a RecCoT snapshot older than this is neither joined to a training sample nor served; none: never",
        range=TTL_DAYS,
    )

    def problems(self) -> list[str]:
        problems = []
        if self.online not in ONLINE_KINDS:
            problems.append(f"online: unknown {self.online!r}; choose one of {list(ONLINE_KINDS)}")
        if self.online == "redis":
            problems += [f"redis: {p}" for p in read_redis(self.redis)[1]]
        # Feast runs os.path.expandvars over feature_store.yaml (feast/repo_config.py:941): no '$' in
        # what is written there but the Redis password's own variable (checked above)
        problems += [
            f"{name}: may not hold '$'" for name in ("project", "registry") if "$" in (getattr(self, name) or "")
        ]
        problems += path_problems("registry", self.registry) + path_problems("offline", self.offline)
        return problems + url_problems("s3_endpoint", self.s3_endpoint)

    @property
    def offline_root(self) -> str:
        return (self.offline or str(Path(self.repo).resolve() / "offline")).rstrip("/")


def _check_redis(connection: str) -> None:
    import redis

    # read as Feast reads it; the password may be ${REDIS_PASSWORD}, read from the environment (a
    # Secret) as Feast's expandvars does; nothing else is expanded
    target = parse_redis(connection)
    password = target.options.get("password")
    if password == PASSWORD:
        password = os.environ.get("REDIS_PASSWORD")
    try:
        redis.Redis(
            host=target.host,
            port=target.port,
            password=None if password is None else str(password),
            username=target.options.get("username"),
            ssl=target.options.get("ssl", False),
            socket_connect_timeout=2,
            socket_timeout=2,
        ).ping()
    except (redis.RedisError, OSError, ValueError) as error:
        # the address only: the connection string may hold a password
        said = inert(error, ERROR_CHARS)
        raise StoreError(f"online store redis at {target.address!r} is unreachable: {said}") from error


def _check_s3(config: StoreConfig, root: str) -> None:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = root.removeprefix("s3://").split("/")[0]
    client = boto3.client(
        "s3", endpoint_url=config.s3_endpoint, config=BotoConfig(connect_timeout=2, retries={"max_attempts": 1})
    )
    try:
        client.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        where = client.meta.endpoint_url
        said = inert(error, ERROR_CHARS)  # the server's words
        raise StoreError(f"offline store s3://{bucket} at {where} is unreachable: {said}") from error


def check_reachable(config: StoreConfig, registry_only: bool = False) -> None:
    """Redis and the offline bucket answer; registry_only: the registry's bucket alone (an s3:// registry)."""
    if registry_only:
        if (config.registry or "").startswith("s3://"):
            _check_s3(config, config.registry)
        return
    if config.online == "redis":
        _check_redis(config.redis)
    if config.offline_root.startswith("s3://"):
        _check_s3(config, config.offline_root)


def repo_yaml(config: StoreConfig) -> dict:
    online = (
        {"type": "sqlite", "path": "online.db"}
        if config.online == "sqlite"
        else {"type": "redis", "connection_string": with_timeouts(config.redis)}
    )
    return {
        "project": config.project,
        "registry": config.registry or "registry.db",
        "provider": "local",
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }


def with_timeouts(connection: str) -> str:
    """`connection` with REDIS_TIMEOUTS_S's options where it sets none."""
    given = parse_redis(connection).options
    return ",".join([connection, *(f"{k}={v}" for k, v in REDIS_TIMEOUTS_S.items() if k not in given)])


@dataclass(frozen=True)
class OpenedStore:
    """A publisher's store, opened once per stage call or command (its services checked): every
    versions.* and arms.* operation takes it (a reader opens the repo instead: reading.open_repo).
    The repo's feature_store.yaml is written, and Feast's store built, when an operation first
    needs them: input refused before that leaves nothing behind."""

    config: StoreConfig

    @cached_property
    def feast(self):
        from feast import FeatureStore

        if self.config.s3_endpoint:  # where Feast's S3 registry store looks for a non-AWS endpoint
            os.environ["FEAST_S3_ENDPOINT_URL"] = self.config.s3_endpoint
        repo = Path(self.config.repo)
        repo.mkdir(parents=True, exist_ok=True)
        with atomic_file(repo / "feature_store.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(repo_yaml(self.config), sort_keys=False))
        return FeatureStore(repo_path=str(repo))


def open_store(config: StoreConfig, registry_only: bool = False) -> OpenedStore:
    """The store behind `config`, after checking its services answer. registry_only: for operations that
    read and write Feast's registry alone (an arm's service, the versions' tags): Redis is not asked,
    and need not be reachable from where the command runs."""
    check_reachable(config, registry_only)
    return OpenedStore(config)
