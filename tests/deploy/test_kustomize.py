"""`kubectl kustomize` renders each overlay; every manifest validates and is restricted."""

import shutil
import subprocess

import pytest

from tests.deploy.manifests import check_all

OVERLAYS = ["base", "overlays/dev", "overlays/prod"]


def render(path: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (its `kustomize` renders offline)")
    return subprocess.run([kubectl, "kustomize", f"k8s/{path}"], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("path", OVERLAYS)
def test_every_overlay_renders_valid_restricted_manifests(path):
    manifests = check_all(render(path), path)
    kinds = {m["kind"] for m in manifests}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service"} <= kinds
    assert "NetworkPolicy" in kinds
    (namespace,) = [m for m in manifests if m["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(m["metadata"].get("namespace") == "trackrec" for m in manifests if m["kind"] != "Namespace")


def test_prod_uses_an_external_redis_and_dev_a_single_feature_server():
    prod = {(m["kind"], m["metadata"]["name"]): m for m in check_all(render("overlays/prod"), "prod")}
    assert ("Deployment", "redis") not in prod and ("NetworkPolicy", "redis-ingress") not in prod
    (repo,) = [m for (kind, _), m in prod.items() if kind == "ConfigMap"]
    assert "redis.prod.internal:6380" in repo["data"]["feature_store.yaml"]
    dev = {(m["kind"], m["metadata"]["name"]): m for m in check_all(render("overlays/dev"), "dev")}
    assert dev[("Deployment", "feast-feature-server")]["spec"]["replicas"] == 1
    assert ("Deployment", "redis") in dev


def test_the_pipeline_runner_role_is_least_privilege():
    manifests = check_all(render("base"), "base")
    (role,) = [m for m in manifests if m["kind"] == "Role"]
    assert not [m for m in manifests if m["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    secrets = [rule for rule in role["rules"] if "secrets" in rule["resources"]]
    assert secrets == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["trackrec-s3"], "verbs": ["get"]}
    ]
    assert all(
        "*" not in rule["verbs"] and set(rule["verbs"]) <= {"get", "watch", "patch", "create"} for rule in role["rules"]
    )
