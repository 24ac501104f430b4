"""k8s/ is the Helm chart rendered (k8s/render.py): fresh, and `kubectl kustomize` renders each
overlay into valid, restricted manifests with a pipeline Role of exactly what upstream needs."""

import subprocess
from pathlib import Path

import pytest

from tests.conftest import required_tool
from tests.deploy.manifests import check_all
from tests.deploy.upstream import check_runner_role

OVERLAYS = ["base", "overlays/dev", "overlays/prod"]
pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart (the dev extra)")


def render(path: str) -> str:
    kubectl = required_tool("kubectl")  # its `kustomize` renders offline
    return subprocess.run([kubectl, "kustomize", f"k8s/{path}"], capture_output=True, text=True, check=True).stdout


def test_the_checked_in_manifests_are_the_chart_rendered_now():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render", "k8s/render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for output, values in module.OUTPUTS.items():
        assert Path("k8s", output).read_text() == module.rendered(values), f"run python k8s/render.py ({output})"


@pytest.mark.parametrize("path", OVERLAYS)
def test_every_overlay_renders_valid_restricted_manifests(path):
    manifests = check_all(render(path), path)
    kinds = {m["kind"] for m in manifests}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service"} <= kinds
    assert {"NetworkPolicy", "LimitRange", "Job"} <= kinds
    (namespace,) = [m for m in manifests if m["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    runs = {"trackrec-pipeline-runner", "trackrec-run-storage", "trackrec-pipeline-egress", "trackrec-publish-egress"}
    for manifest in manifests:  # the stack in trackrec; the runs' identity where standalone KFP runs them
        if manifest["kind"] != "Namespace":
            expected = "kubeflow" if manifest["metadata"]["name"] in runs else "trackrec"
            assert manifest["metadata"]["namespace"] == expected, manifest["metadata"]["name"]


def test_prod_uses_an_external_redis_and_dev_a_single_feature_server():
    prod = {(m["kind"], m["metadata"]["name"]): m for m in check_all(render("overlays/prod"), "prod")}
    assert ("StatefulSet", "redis") not in prod and ("NetworkPolicy", "redis-ingress") not in prod
    assert "redis.prod.internal:6380" in prod[("ConfigMap", "feast-repo")]["data"]["feature_store.yaml"]
    dev = {(m["kind"], m["metadata"]["name"]): m for m in check_all(render("overlays/dev"), "dev")}
    assert dev[("Deployment", "feast-feature-server")]["spec"]["replicas"] == 1
    assert ("StatefulSet", "redis") in dev


@pytest.mark.parametrize("path", OVERLAYS)
def test_the_pipeline_runner_role_grants_what_upstream_needs_and_no_more(path):
    manifests = check_all(render(path), path)
    (role,) = [m for m in manifests if m["kind"] == "Role"]
    assert not [m for m in manifests if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    check_runner_role(role["rules"])
