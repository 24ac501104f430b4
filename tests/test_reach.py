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
}


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
    from trackrec.features.store import StoreConfig, StoreError, check_reachable

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-s3-secret-value")
    with pytest.raises(StoreError) as unreachable:
        check_reachable(StoreConfig(online="redis", redis="${AWS_SECRET_ACCESS_KEY}:6379"))
    assert "the-s3-secret-value" not in str(unreachable.value) and "${AWS_SECRET_ACCESS_KEY}" in str(unreachable.value)
