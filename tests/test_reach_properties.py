"""URLs and Redis connection strings with case, space, port, user and separator tricks, through the
reach check: whatever it lets through, its consumers read as the place the deployment allows.
The consumers' own parsers are the oracle: urllib.parse (botocore's, and Feast's for the
registry), urllib3's (requests', for the teacher) and Feast's Redis connection-string parser."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
import yaml
from feast.infra.online_stores.redis import RedisOnlineStore
from hypothesis import example, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from trackrec.errors import ConfigError
from trackrec.features.store import StoreConfig, repo_yaml
from trackrec.reach import PASSWORD, REDIS_OPTIONS, Reach, Teacher, problems

FAST = settings(max_examples=400, deadline=None)
REACH = Reach(
    redis=("redis.prod:6380",),
    buckets=("prod",),
    s3_endpoint="http://minio.prod:9000",
    teachers=(Teacher(endpoint="https://teacher.prod/v1"),),
)
SPACE = st.sampled_from(["", " ", "\t", "\n", "\x00", "\x1f", "\u00a0", "\u3000"])
SCHEME = st.sampled_from(["http", "HTTP", "Http", "https", "s3", "S3", "file", "ftp", "hTtP"])
USER = st.sampled_from(["", "user@", "minio.prod:9000@", "a:b@", "%40@"])
HOST = st.sampled_from(
    ["minio.prod", "MINIO.prod", "minio.prod.", "evil", "minio.prod.evil", "evil#@minio.prod", "ｍinio.prod",
     "minio%2eprod", "[::1]", "127.0.0.1", "teacher.prod", "TEACHER.PROD", "prod", "minio.prod\\@evil", ""]
)  # fmt: skip
PORT = st.sampled_from(["", ":9000", ":09000", ":80", ":443", ":", ":99999", ":9000x", ":-1"])
PATH = st.sampled_from(["", "/", "/v1", "/v1/", "//v1", "/v1?x=1", "#frag", "/x/../v1", "?"])
URLS = st.builds(lambda *parts: "".join(parts), SPACE, SCHEME, st.sampled_from(["://", ":/", ":", ":///"]), USER,
                 HOST, PORT, PATH, SPACE)  # fmt: skip


def consumers_read(text: str) -> set[tuple]:
    """(host, port) as urllib.parse and urllib3 read `text`, with default ports filled in."""
    read = set()
    for parse in (urlsplit, parse_url):
        try:
            parts = parse(text.strip())
            scheme = (parts.scheme or "").lower()
            host = (parts.hostname if parse is urlsplit else parts.host or "").lower().rstrip(".")
            read.add((scheme, host, parts.port or {"http": 80, "https": 443}.get(scheme)))
        except ValueError:
            read.add(("unreadable",))
    return read


@FAST
@given(url=URLS)
def test_an_s3_endpoint_let_through_is_the_allowed_one_to_every_consumer(url):
    if not problems({"features": {"store": {"s3_endpoint": url}}}, REACH):
        assert consumers_read(url) == {("http", "minio.prod", 9000)}, url


@FAST
@given(url=URLS)
def test_a_teacher_let_through_is_the_allowed_one_to_every_consumer(url):
    config = {"llm": {"teacher": {"kind": "openai", "endpoint": url, "api_key_env": "TRACKREC_TEACHER_API_KEY"}}}
    if not problems(config, REACH):
        assert consumers_read(url) == {("https", "teacher.prod", 443)}, url


@FAST
@given(url=URLS)
def test_any_other_field_holds_only_an_allowed_bucket(url):
    if not problems({"data": {"path": url}}, REACH) and consumers_read(url) != {("", "", None)}:
        assert {(s, h) for s, h, _ in consumers_read(url)} == {("s3", "prod")}, url


@FAST
@given(url=URLS)
def test_a_store_path_the_loader_accepts_is_read_alike_by_feast_and_by_our_prefix_test(url):
    try:
        config = StoreConfig(registry=url)
    except ConfigError:
        return
    feast_reads_s3 = urlsplit(config.registry).scheme == "s3"  # feast/infra/registry/registry.py:158
    assert feast_reads_s3 == config.registry.startswith("s3://")  # trackrec/features/store.py's test


OPTION = st.one_of(
    st.sampled_from([*REDIS_OPTIONS, "db", "unix_socket_path", "ssl_cert_reqs", "host", "port", "$HOME", " ssl"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_$", max_size=12),
)
VALUE = st.sampled_from(["true", "false", '"false"', "1", "0", "NaN", "1e999", "-1", "2.5", PASSWORD, "$HOME",
                         "${AWS_SECRET_ACCESS_KEY}", "none", "x,evil:1", "", "hunter2"])  # fmt: skip
ADDRESS = st.sampled_from(
    ["redis.prod:6380", "REDIS.prod:6380", "redis.prod", "redis.prod:6379", " redis.prod:6380", "redis.prod:6380 ",
     "evil:6380", "redis.prod:6380:1", "[::1]:6380", "redis.prod.:6380", "redis.prod:06380"]
)  # fmt: skip
CONNECTIONS = st.builds(
    lambda address, parts: ",".join([address, *parts]),
    ADDRESS,
    st.lists(
        st.one_of(st.builds(lambda k, v: f"{k}={v}", OPTION, VALUE), st.sampled_from(["evil:6380", ""])), max_size=4
    ),
)


@FAST
@given(connection=CONNECTIONS)
@example(connection="REDIS.prod:6380,password=${REDIS_PASSWORD},ssl=true,socket_timeout=2")
def test_a_redis_connection_let_through_goes_where_feast_is_allowed_and_nowhere_else(connection, tmp_path_factory):
    try:
        config = StoreConfig(online="redis", redis=connection)
    except ConfigError:
        return
    if problems({"features": {"store": {"online": "redis", "redis": connection}}}, REACH):
        return
    written = yaml.safe_dump(repo_yaml(config))
    # what Feast reads: feature_store.yaml through os.path.expandvars (feast/repo_config.py:941)
    os.environ["REDIS_PASSWORD"] = "the-password"
    expanded = yaml.safe_load(os.path.expandvars(written))["online_store"]["connection_string"]
    nodes, options = RedisOnlineStore._parse_connection_string(expanded)
    assert [(n["host"].lower().rstrip("."), int(n.get("port", 6379))) for n in nodes] == [("redis.prod", 6380)]
    assert set(options) <= set(REDIS_OPTIONS)
    assert written.replace(PASSWORD, "") == os.path.expandvars(written.replace(PASSWORD, ""))  # no other variable
    assert options.get("ssl", False) in (True, False)
    assert 0 < options["socket_timeout"] <= 300 and 0 < options["socket_connect_timeout"] <= 300


@pytest.mark.parametrize(
    "url",
    ["HTTP://MINIO.prod:9000", " http://minio.prod:9000/", "http://minio.prod.:9000", "http://minio.prod:9000\n"],
)
def test_the_allowed_endpoint_written_another_way_is_allowed(url):
    assert problems({"features": {"store": {"s3_endpoint": url}}}, REACH) == []
