"""The Helm chart, rendered and linted offline with helm-python-sdk (no helm binary): every render
validates; the values schema rejects bad types; the GPU pool settings reach the pipeline."""

import pytest
import yaml

from tests.deploy.manifests import check_all

helm = pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart (the dev extra)")

CHART = "helm/trackrec"
PROD = yaml.safe_load(open(f"{CHART}/values-prod.yaml"))


def render(values=None) -> dict[str, str]:
    return helm.Chart.load(CHART).render(values, name="trackrec", namespace="trackrec", is_install=True)


@pytest.mark.parametrize("values", [None, PROD], ids=["default", "prod"])
def test_chart_lints_and_every_render_validates(values):
    report = helm.lint(CHART, values, strict=True)
    assert report["errors"] == [] and all(m["severity"] < 2 for m in report["messages"]), report
    rendered = render(values)
    manifests = check_all("\n---\n".join(t for p, t in rendered.items() if p.endswith(".yaml")), "chart")
    kinds = {m["kind"] for m in manifests}
    assert {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service", "Job"} <= kinds
    (job,) = [m for m in manifests if m["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    command = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "trackrec compile" in command and "trackrec schedule" in command and "--cron" in command
    assert ("redis" in {m["metadata"]["name"] for m in manifests if m["kind"] == "Deployment"}) == (values is None)
    assert "feast-feature-server" in rendered["trackrec/templates/NOTES.txt"]


def test_a_value_of_the_wrong_type_is_rejected_by_the_schema():
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmValuesError, match="at '/feast/replicas': got string, want integer"):
        chart.validate_schema({"feast": {"replicas": "three"}})
    with pytest.raises(helm.HelmValuesError, match="/gpuPool/gpus"):
        chart.validate_schema({"gpuPool": {"gpus": 0}})
    with pytest.raises(helm.HelmValuesError, match="colour"):
        chart.validate_schema({"colour": "red"})


def test_gpu_pool_values_reach_the_pipelines_scheduling(tmp_path):
    from pipelines.compile import compile_pipeline
    from pipelines.settings import PipelineSettings
    from trackrec.config import config_from_dict, load_config
    from trackrec.run_config import RunConfig

    data = yaml.safe_load(render(PROD)["trackrec/templates/pipeline-settings.yaml"])["data"]
    (tmp_path / "overrides.yaml").write_text(data["overrides.yaml"])
    settings = config_from_dict(PipelineSettings, yaml.safe_load(data["settings.yaml"]), "settings.yaml")
    config = load_config("configs/cluster.yaml", RunConfig, tmp_path / "overrides.yaml")
    assert config.features.store.redis == "redis.prod.internal:6380,password=${REDIS_PASSWORD},ssl=true"
    assert config.features.store.registry == "s3://ml-trackrec/features/registry.db"
    path = compile_pipeline(config, settings, tmp_path / "p.yaml")
    pipeline, platform = yaml.safe_load_all(path.read_text())
    executors, k8s = pipeline["deploymentSpec"]["executors"], platform["platforms"]["kubernetes"]["deploymentSpec"]
    align = next(name for name in executors if name.startswith("exec-align"))
    assert executors[align]["container"]["resources"]["accelerator"]["resourceCount"] == "8"
    assert k8s["executors"][align]["nodeSelector"]["labels"]["cloud.example.com/accelerator"] == "h100"
    assert {"key": "dedicated", "operator": "Equal", "value": "ml-training", "effect": "NoSchedule"} in k8s[
        "executors"
    ][align]["tolerations"]
    summarize = next(name for name in executors if name.startswith("exec-summarize"))
    assert executors[summarize]["container"]["resources"]["accelerator"]["resourceCount"] == "1"
    assert pipeline["defaultPipelineRoot"] == "s3://ml-trackrec/pipeline-root"
