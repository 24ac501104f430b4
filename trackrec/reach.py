"""What a run may reach, set by the deployment; a run's config may only choose among it.

Anyone allowed to start a run can write its `config` parameter, so hosts, buckets and the
environment variables a run reads must not come from there: a Redis host of the run's choosing
with `password=${AWS_SECRET_ACCESS_KEY}` would send the S3 key away. The deployment's settings
compile a Reach into every task's environment (`TRACKREC_REACH`); the first task checks the run
config against it, and every other task reads its section from that task's outputs.

Every URL-like text is parsed once, as its consumers parse it (surrounding spaces and control
characters stripped, scheme and host lowercased, default ports filled in), and compared in that
form; a text a consumer could read another way (a user part, spaces inside, a backslash, an escaped
or non-ASCII host) is refused outright.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.parse
from dataclasses import dataclass

from trackrec.config import Config, config_from_dict, config_to_dict, field

ENV = "TRACKREC_REACH"
PASSWORD = "${REDIS_PASSWORD}"  # the one variable a config may name, and only as the Redis password
REDIS_PORT = 6379  # redis-py's default where the connection string names none
# Redis options a run may set: none of them changes which server or database the rows go to, or
# weakens TLS (unix_socket_path, db, ssl_cert_reqs, ssl_ca_certs, ... are refused). Feast hands every
# option to redis.Redis(**options) (feast/infra/online_stores/redis.py:361-386, 406-413).
REDIS_OPTIONS = ("password", "username", "ssl", "socket_timeout", "socket_connect_timeout")
MAX_REDIS_TIMEOUT_S = 300
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# what urllib.parse strips off a URL's ends (urllib/parse.py:494, _WHATWG_C0_CONTROL_OR_SPACE), as
# requests and botocore do
_ENDS = "".join(chr(c) for c in range(0x21))


def _stripped(text: str) -> str:
    """`text` without what any consumer strips off its ends: urllib's C0 controls and spaces, and
    the Unicode whitespace str.strip() takes (requests' prepare_url lstrips a URL so)."""
    while text != (text := text.strip().strip(_ENDS)):
        pass
    return text


@dataclass(frozen=True)
class Url:
    """A URL as its consumers read it: scheme and host lowercased, the scheme's default port filled
    in, the path (and query) without a trailing slash."""

    scheme: str
    host: str
    port: int | None
    path: str


def parse_url(text: str) -> Url | None:
    """`text` parsed as a URL; None where it is none (no scheme). Raises ValueError saying why a
    URL-like text is refused."""
    stripped = _stripped(text)
    if not _SCHEME.match(stripped) and "://" not in stripped:
        return None
    if any(ord(c) < 0x21 or c in "\\\x7f" or c.isspace() for c in stripped):
        raise ValueError("holds spaces, control characters or a backslash")
    parts = urllib.parse.urlsplit(stripped)
    if "@" in parts.netloc:  # user@host: which of the two is the host depends on the parser
        raise ValueError("names a user (user@host)")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError("has a port that is not a number in 0..65535") from error
    host = (parts.hostname or "").rstrip(".")  # hostname is lowercased; "host." is the same host
    if not _HOST.fullmatch(host):
        raise ValueError(f"host {host!r} is not a plain host name (ASCII letters, digits, '.', '-')")
    scheme = parts.scheme  # urlsplit lowercases it, as .hostname does the host
    path = parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    return Url(scheme, host, port or _DEFAULT_PORTS.get(scheme), path)


@dataclass(frozen=True)
class RedisTarget:
    """A Feast Redis connection string read as Feast reads it: its first part the server, the rest
    options, each value JSON-decoded where it parses (feast/infra/online_stores/redis.py:369-384)."""

    host: str
    port: int
    options: dict

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _redis_address(text: str) -> tuple[str, int]:
    host, colon, port = text.partition(":")
    if not _HOST.fullmatch(host.lower()) or (colon and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"{text!r} is not host:port (a plain host name and a port in 1..65535)")
    return host.lower().rstrip("."), int(port) if colon else REDIS_PORT


def _decoded(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _option_problem(key: str, raw: str, value) -> str | None:
    if "$" in raw and (key, raw) != ("password", PASSWORD):
        return f"{key}= may not hold '$' (Feast expands variables in feature_store.yaml; only password={PASSWORD})"
    if key == "ssl" and not isinstance(value, bool):
        return f"ssl= must be true or false, got {raw!r}"
    if key.endswith("timeout") and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and 0 < value <= MAX_REDIS_TIMEOUT_S)
    ):
        return f"{key}= must be seconds in (0, {MAX_REDIS_TIMEOUT_S}], got {raw!r}"
    return None


def read_redis(connection: str) -> tuple[RedisTarget | None, list[str]]:
    """(the target, or None where its server cannot be read; every problem of `connection`)."""
    if any(ord(c) < 0x21 or c == "\x7f" for c in connection):  # Feast strips nothing
        return None, ["holds spaces or control characters"]
    address, *parts = connection.split(",")
    found, options = [], {}
    try:
        host, port = _redis_address(address)
    except ValueError as error:
        host = port = None
        found.append(str(error))
    for part in parts:
        key, equals, raw = part.partition("=")
        if not equals:
            found.append(f"{part!r}: one server only (a part without '=' is another server to Feast)")
        elif key not in REDIS_OPTIONS:
            found.append(f"option {key!r} is not one a run may set {list(REDIS_OPTIONS)}")
        elif key in options:
            found.append(f"option {key!r} given twice")
        else:
            options[key] = _decoded(raw)
            problem = _option_problem(key, raw, options[key])
            found += [problem] if problem else []
    return (None if host is None else RedisTarget(host, port, options)), found


def parse_redis(connection: str) -> RedisTarget:
    """The target of a connection string already checked (StoreConfig checks its own)."""
    target, found = read_redis(connection)
    if found:
        raise ValueError(f"Redis connection string: {found[0]}")
    return target


@dataclass
class Teacher(Config):
    endpoint: str = field(help="base URL up to /v1 of an allowed teacher server")
    api_key_env: str = field("TRACKREC_TEACHER_API_KEY", help="the variable holding its key")
    secret: str | None = field(None, help="the Kubernetes Secret (key `api-key`) the distill pods read it from")

    def problems(self) -> list[str]:
        return url_problems("endpoint", self.endpoint, required=True)


@dataclass
class Reach(Config):
    """Everything remote a run may name; nothing else."""

    redis: tuple[str, ...] = field((), help="host:port of the allowed Redis online stores")
    buckets: tuple[str, ...] = field((), help="S3 buckets a run may read and write")
    s3_endpoint: str | None = field(None, help="the S3 endpoint URL (none: AWS)")
    teachers: tuple[Teacher, ...] = field((), help="allowed teacher servers, each with its key's variable")

    def problems(self) -> list[str]:
        found = [f"redis: {p}" for address in self.redis for p in read_redis(address)[1]]
        found += [f"buckets: {b!r} is not an S3 bucket name" for b in self.buckets if not _BUCKET.fullmatch(b)]
        return found + url_problems("s3_endpoint", self.s3_endpoint)


def _parsed(name: str, text: str) -> tuple[Url | None, list[str]]:
    """(the URL in a field read by our code and by Feast or botocore, a problem where those could
    read it differently: spaces around it, tricks inside)."""
    try:
        url = parse_url(text)
    except ValueError as error:
        return None, [f"{name}: {text!r} {error}"]
    if url is not None and text != _stripped(text):
        return None, [f"{name}: {text!r} has spaces or control characters around it"]
    return url, []


def url_problems(name: str, text: str | None, required: bool = False) -> list[str]:
    """A field that must hold an http(s) URL (or nothing, unless `required`)."""
    if text is None:
        return [f"{name}: required"] if required else []
    url, found = _parsed(name, text)
    if not found and (url is None or url.scheme not in _DEFAULT_PORTS):
        found.append(f"{name}: {text!r} is not an http(s) URL")
    return found


def path_problems(name: str, text: str | None) -> list[str]:
    """A field that holds a local path or s3://bucket/key: written so that our code (which reads the
    `s3://` prefix) and Feast or boto3 (which parse the URL) take it for the same place."""
    url, found = (None, []) if text is None else _parsed(name, text)
    if url is None:
        return found
    if url.scheme != "s3" or not text.startswith("s3://") or url.port is not None:
        return [f"{name}: {text!r} is neither a local path nor s3://bucket/key (lowercase s3://, no port)"]
    if not _BUCKET.fullmatch(urllib.parse.urlsplit(text).netloc):
        return [f"{name}: {text!r} does not name an S3 bucket (lowercase letters, digits, '.', '-')"]
    return []


def _allowed_url(text: str | None) -> Url | None:
    return None if text is None else parse_url(text)


def problems(config: dict, reach: Reach) -> list[str]:
    """What in a run config (as a plain dict) lies outside `reach`, one line each."""
    found = []
    store = ((config.get("features") or {}).get("store")) or {}
    if store.get("online") == "redis":
        target, said = read_redis(store.get("redis", ""))
        allowed = {parse_redis(address).address for address in reach.redis}
        found += [f"features.store.redis: {p}" for p in said]
        if target is not None and target.address not in allowed:
            found.append(
                f"features.store.redis: host {target.address!r} is not one the deployment allows {sorted(allowed)}"
            )
    # the URLs each field may hold; an s3:// URL of an allowed bucket is allowed in any other field
    endpoints = {
        "features.store.s3_endpoint": {_allowed_url(reach.s3_endpoint)},
        "llm.teacher.endpoint": {parse_url(t.endpoint) for t in reach.teachers},
    }
    teacher = ((config.get("llm") or {}).get("teacher")) or {}
    if teacher.get("kind") == "openai":
        try:
            chosen = (parse_url(teacher.get("endpoint") or ""), teacher.get("api_key_env", ""))
        except ValueError:
            chosen = (None, teacher.get("api_key_env", ""))  # the endpoint itself is named below
        pairs = [(t.endpoint, t.api_key_env) for t in reach.teachers]
        if chosen not in [(parse_url(t.endpoint), t.api_key_env) for t in reach.teachers]:
            found.append(
                f"llm.teacher: endpoint {teacher.get('endpoint')!r} with key variable {chosen[1]!r} "
                f"is not an allowed pair {pairs}"
            )
    for where, text in _strings(config):
        if where == "features.store.redis":
            continue
        if "$" in text:
            found.append(f"{where}: may not name an environment variable (no '$')")
            continue
        try:
            url = parse_url(text)
        except ValueError as error:
            found.append(f"{where}: {text!r} {error}")
            continue
        if url is None or url in endpoints.get(where, ()):
            continue
        if where in endpoints:
            found.append(f"{where}: {text!r} is not an endpoint the deployment allows")
        elif url.scheme != "s3" or url.port is not None:
            found.append(f"{where}: {text!r} is not a URL the deployment allows (only s3:// of its buckets)")
        elif url.host not in reach.buckets:
            found.append(f"{where}: bucket {url.host!r} is not one the deployment allows {list(reach.buckets)}")
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
