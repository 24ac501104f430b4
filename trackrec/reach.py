"""What a run may reach, set by the deployment; a run's config may only choose among it.

Anyone allowed to start a run can write its `config` parameter, so hosts, buckets and the
environment variables a run reads must not come from there: a Redis host of the run's choosing
with `password=${AWS_SECRET_ACCESS_KEY}` would send the S3 key away. The deployment's settings
compile a Reach into every task's environment (`TRACKREC_REACH`); the first task checks the run
config against it, and every other task reads its section from that task's outputs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from trackrec.config import Config, config_from_dict, config_to_dict, field

ENV = "TRACKREC_REACH"
PASSWORD = "${REDIS_PASSWORD}"  # the one variable a config may name, and only as the Redis password
_VARIABLE = re.compile(r"\$\{?[A-Za-z_]")


@dataclass
class Teacher(Config):
    endpoint: str = field(help="base URL up to /v1 of an allowed teacher server")
    api_key_env: str = field("TRACKREC_TEACHER_API_KEY", help="the variable holding its key")
    secret: str | None = field(None, help="the Kubernetes Secret (key `api-key`) the distill pods read it from")


@dataclass
class Reach(Config):
    """Everything remote a run may name; nothing else."""

    redis: tuple[str, ...] = field((), help="host:port of the allowed Redis online stores")
    buckets: tuple[str, ...] = field((), help="S3 buckets a run may read and write")
    s3_endpoint: str | None = field(None, help="the S3 endpoint URL (none: AWS)")
    teachers: tuple[Teacher, ...] = field((), help="allowed teacher servers, each with its key's variable")


def redis_parts(connection: str) -> tuple[str, dict[str, str]]:
    """Feast's `host:port[,password=...][,ssl=true]` -> (host:port, options), nothing expanded."""
    address, *options = connection.split(",")
    return address.strip(), dict(option.split("=", 1) for option in options if "=" in option)


def problems(config: dict, reach: Reach) -> list[str]:
    """What in a run config (as a plain dict) lies outside `reach`, one line each."""
    found = []
    store = ((config.get("features") or {}).get("store")) or {}
    if store.get("online") == "redis":
        address, options = redis_parts(store.get("redis", ""))
        if address not in reach.redis:
            found.append(f"features.store.redis: host {address!r} is not one the deployment allows {list(reach.redis)}")
        for key, value in options.items():
            if _VARIABLE.search(value) and (key, value) != ("password", PASSWORD):
                found.append(f"features.store.redis: {key}= may not name a variable (only password={PASSWORD})")
    teacher = ((config.get("llm") or {}).get("teacher")) or {}
    if teacher.get("kind") == "openai":
        chosen = (teacher.get("endpoint") or "", teacher.get("api_key_env", ""))
        allowed = [(t.endpoint, t.api_key_env) for t in reach.teachers]
        if chosen not in allowed:
            found.append(
                f"llm.teacher: endpoint {chosen[0]!r} with key variable {chosen[1]!r} is not an allowed pair {allowed}"
            )
    for where, text in _strings(config):
        if where in ("features.store.redis", "llm.teacher.endpoint"):
            continue
        if _VARIABLE.search(text):
            found.append(f"{where}: may not name an environment variable")
        elif text.startswith("s3://") and text[5:].split("/")[0] not in reach.buckets:
            found.append(f"{where}: bucket {text[5:].split('/')[0]!r} is not one the deployment allows")
        elif re.match(r"[a-z][a-z0-9+.-]*://", text) and not text.startswith("s3://") and text != reach.s3_endpoint:
            found.append(f"{where}: {text!r} is not an endpoint the deployment allows")
    return found


def _strings(value, where: str = ""):
    """(dotted path, text) of every string in a plain config."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def to_env(reach: Reach) -> str:
    return json.dumps(config_to_dict(reach), sort_keys=True)


def from_env() -> Reach | None:
    """The deployment's Reach, or None where no deployment set one (a run on one's own machine)."""
    text = os.environ.get(ENV)
    return None if text is None else config_from_dict(Reach, json.loads(text), ENV)
