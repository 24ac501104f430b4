"""What a run may reach comes from the deployment: a run config naming another Redis host, a
variable other than the Redis password, another bucket or teacher is refused before any stage."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from components.config import split_config
from pipelines.compile import COMPILED, package_reach
from tests.kfp_api_server import KFPApiServer
from trackrec.cli import app
from trackrec.config import config_to_dict, load_config
from trackrec.errors import ConfigError
from trackrec.reach import ENV, problems, to_env
from trackrec.run_config import RunConfig

CLUSTER = "configs/cluster.yaml"


def cluster_config(**changes) -> dict:
    """configs/cluster.yaml as a plain dict, with `changes` ("a.b.c": value) applied."""
    plain = config_to_dict(load_config(CLUSTER, RunConfig))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = plain
        for key in parents:
            node = node[key]
        node[leaf] = value
    return plain


ATTACKS = {
    "another redis host": ({"features.store.redis": "elsewhere:6379,password=${REDIS_PASSWORD}"}, "elsewhere:6379"),
    "the S3 key as password": (
        {"features.store.redis": "redis.trackrec.svc:6379,password=${AWS_SECRET_ACCESS_KEY}"},
        "password=${REDIS_PASSWORD}",
    ),
    "the S3 key as teacher key": ({"llm.teacher.api_key_env": "AWS_SECRET_ACCESS_KEY"}, "is not an allowed pair"),
    "another teacher": ({"llm.teacher.endpoint": "http://collector.example:80/v1"}, "collector.example"),
    "another bucket": ({"features.store.offline": "s3://someone-elses/features"}, "'someone-elses'"),
    "another S3 endpoint": ({"features.store.s3_endpoint": "http://collector.example:9000"}, "collector.example"),
    "a variable elsewhere": ({"data.path": "s3://trackrec/${AWS_SECRET_ACCESS_KEY}"}, "may not name"),
    # URLs compared as their consumers parse them (issue 30): case, spaces, users, ports
    "the registry in another bucket, upper case": ({"features.store.registry": "S3://evil/registry.db"}, "S3://evil"),
    "the registry in another bucket, spaced": ({"features.store.registry": " s3://evil/registry.db"}, "s3://evil"),
    "another S3 endpoint, upper case": ({"features.store.s3_endpoint": "HTTP://other-host"}, "other-host"),
    "another S3 endpoint, spaced": ({"features.store.s3_endpoint": " http://other-host"}, "other-host"),
    "another S3 endpoint behind a user": (
        {"features.store.s3_endpoint": "http://trackrec@other-host:9000"},
        "names a user",
    ),
    "another teacher behind a user": (
        {"llm.teacher.endpoint": "http://teacher.trackrec.svc:8000@collector.example/v1"},
        "names a user",
    ),
    "another bucket, upper case": ({"data.path": "S3://someone-elses/log.parquet"}, "someone-elses"),
    "another bucket, spaced": ({"llm.base": "\ts3://someone-elses/model"}, "someone-elses"),
    "an http URL as a path": ({"ctr.user_vectors": "https://collector.example/v.parquet"}, "collector.example"),
    "a file URL": ({"data.id_map": "file:///etc/trackrec/ids/"}, "file:///etc"),
    # Redis options from an allow-list; no '$' in what Feast expands
    "a variable as a Redis option": (
        {"features.store.redis": "redis.trackrec.svc:6379,password=${REDIS_PASSWORD},$AWS_SECRET_ACCESS_KEY=1"},
        "$AWS_SECRET_ACCESS_KEY",
    ),
    "another Redis through a socket": (
        {"features.store.redis": "redis.trackrec.svc:6379,password=${REDIS_PASSWORD},unix_socket_path=/tmp/r.sock"},
        "'unix_socket_path' is not one a run may set",
    ),
    "certificate checks off": (
        {"features.store.redis": "redis.trackrec.svc:6379,password=${REDIS_PASSWORD},ssl=true,ssl_cert_reqs=none"},
        "'ssl_cert_reqs' is not one a run may set",
    ),
    "another database": ({"features.store.redis": "redis.trackrec.svc:6379,db=3"}, "'db' is not one a run may set"),
    "a second Redis server": ({"features.store.redis": "redis.trackrec.svc:6379,elsewhere:6379"}, "one server only"),
    "a spaced Redis host": ({"features.store.redis": " redis.trackrec.svc:6379"}, "spaces"),
    "ssl as a string": ({"features.store.redis": 'redis.trackrec.svc:6379,ssl="false"'}, "ssl= must be true or false"),
    "a timeout of NaN": ({"features.store.redis": "redis.trackrec.svc:6379,socket_timeout=NaN"}, "socket_timeout="),
    "a variable in the project": ({"features.store.project": "p$AWS_SECRET_ACCESS_KEY"}, "project: may not hold '$'"),
}

ALLOWED = {
    "the Redis host in upper case": {"features.store.redis": "REDIS.trackrec.svc:6379,password=${REDIS_PASSWORD}"},
    "the Redis host without its default port": {
        "features.store.redis": "redis.trackrec.svc,password=${REDIS_PASSWORD}"
    },
    "the teacher in upper case, default port, trailing slash": {
        "llm.teacher.endpoint": "HTTP://Teacher.trackrec.svc:8000/v1/"
    },
    "timeouts within range": {
        "features.store.redis": "redis.trackrec.svc:6379,socket_timeout=2.5,socket_connect_timeout=1"
    },
}


@pytest.mark.parametrize("case", list(ALLOWED))
def test_a_url_written_another_way_that_reaches_the_same_place_is_allowed(case, monkeypatch):
    monkeypatch.setenv(ENV, to_env(package_reach(COMPILED)))
    split_config(config=json.dumps(cluster_config(**ALLOWED[case])), iterations=3, features=True)


def test_the_cluster_config_is_within_the_default_deployment():
    assert problems(cluster_config(), package_reach(COMPILED)) == []


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_run_config_reaching_outside_the_deployment_is_refused_by_the_first_task(attack, monkeypatch):
    changes, said = ATTACKS[attack]
    monkeypatch.setenv(ENV, to_env(package_reach(COMPILED)))  # as the compiled first task has it
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-s3-secret-value")
    with pytest.raises(ConfigError) as refused:
        split_config(config=json.dumps(cluster_config(**changes)), iterations=3, features=True)
    assert said in str(refused.value) and "the-s3-secret-value" not in str(refused.value)


def test_the_first_task_splits_an_allowed_config(monkeypatch):
    monkeypatch.setenv(ENV, to_env(package_reach(COMPILED)))
    sections = split_config(config=json.dumps(cluster_config()), iterations=3, features=True)
    assert json.loads(sections.features)["store"]["online"] == "redis"


def test_submit_refuses_such_a_config_before_any_request():
    changes, said = ATTACKS["the S3 key as password"]
    with KFPApiServer() as kfp:
        config = f"config={json.dumps(cluster_config(**changes))}"
        result = CliRunner().invoke(app, ["submit", "--package", str(COMPILED), "--host", kfp.url, "--param", config])
        assert result.exit_code == 2 and said in result.output, result.output
        assert kfp.requests == []


def test_the_reach_comes_from_the_settings_the_pipeline_is_compiled_with(tmp_path):
    from pipelines.compile import compile_pipeline
    from pipelines.settings import PipelineSettings
    from trackrec.config import config_from_dict

    settings = config_from_dict(PipelineSettings, {"reach": {"redis": ["redis.prod:6380"], "buckets": ["prod"]}})
    package = compile_pipeline(load_config(CLUSTER, RunConfig), settings, tmp_path / "p.yaml")
    reach = package_reach(package)
    assert reach.redis == ("redis.prod:6380",) and reach.buckets == ("prod",) and reach.teachers == ()
    executors = next(yaml.safe_load_all(package.read_text()))["deploymentSpec"]["executors"]
    holders = [name for name, e in executors.items() if any(v["name"] == ENV for v in e["container"].get("env", []))]
    assert holders == ["exec-split-config"]


def test_a_variable_in_the_redis_host_is_neither_expanded_nor_printed_expanded(monkeypatch):
    from trackrec.features.store import StoreConfig

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-s3-secret-value")
    with pytest.raises(ConfigError) as refused:
        StoreConfig(online="redis", redis="${AWS_SECRET_ACCESS_KEY}:6379")
    assert "the-s3-secret-value" not in str(refused.value) and "${AWS_SECRET_ACCESS_KEY}" in str(refused.value)


def test_a_publish_on_a_stalled_redis_fails_instead_of_hanging(tmp_path, monkeypatch):
    """Feast's Redis client, built from the feature_store.yaml the publisher writes, has a connect and
    a read timeout: against a redis-server that holds its connections and answers nothing (SIGSTOP)
    a write fails within them (about 10 s at 1 s timeouts: redis-py retries a timed-out command)."""
    import threading

    import redis

    from tests.faults import redis_server
    from trackrec.features import store
    from trackrec.features.store import OpenedStore, StoreConfig

    assert store.REDIS_TIMEOUTS_S == {"socket_connect_timeout": 5, "socket_timeout": 30}
    monkeypatch.setattr(store, "REDIS_TIMEOUTS_S", {"socket_connect_timeout": 1, "socket_timeout": 1})
    with redis_server() as server:
        feast = OpenedStore(StoreConfig(repo=str(tmp_path / "repo"), online="redis", redis=server.url)).feast
        client = feast._get_provider().online_store._get_client(feast.config.online_store)
        client.set("before", 1)
        failed = []

        def write():
            try:
                client.hset("trackrec:user:1", mapping={"embedding": b"x"})
            except redis.TimeoutError as error:
                failed.append(error)

        with server.stalled():
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            writer.join(timeout=40)
            hung = writer.is_alive()
        assert not hung and failed, "a write on a stalled Redis hung"
