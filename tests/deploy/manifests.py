"""Checks every rendered manifest must pass: schema-valid (kubernetes-validate, strict), pods
non-root and restricted, requests and limits on every container, no secret value."""

from __future__ import annotations

import re

import kubernetes_validate
import yaml

SECRET_NAMES = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN", re.IGNORECASE)


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def validate_strict(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)


def pod_specs(manifest: dict) -> list[dict]:
    spec = manifest.get("spec", {})
    if manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [spec["template"]["spec"]]
    if manifest["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    return [spec] if manifest["kind"] == "Pod" else []


def check_pod(pod: dict, where: str) -> None:
    security = pod.get("securityContext", {})
    assert security.get("runAsNonRoot") is True and security.get("runAsUser", 0) > 0, f"{where}: runs as root"
    assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: no seccomp profile"
    for container in pod.get("initContainers", []) + pod["containers"]:
        name = f"{where}/{container['name']}"
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{name}: no {kind} for cpu and memory"
        context = container.get("securityContext", {})
        assert context.get("allowPrivilegeEscalation") is False, f"{name}: privilege escalation allowed"
        assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities not dropped"
        for env in container.get("env", []):
            if SECRET_NAMES.search(env["name"]):
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], f"{name}: {env['name']} inline"


def strings(value):
    """Every string inside a manifest."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def check_no_secret_values(manifest: dict) -> None:
    """No Secret object, and a Redis password only as the ${REDIS_PASSWORD} the pods expand."""
    assert manifest["kind"] != "Secret", f"a Secret is rendered: {manifest['metadata']['name']}"
    for text in strings(manifest):
        for password in re.findall(r"password=([^,\s\"']*)", text):
            assert password == "${REDIS_PASSWORD}", f"a Redis password in {manifest['metadata']['name']}"


def check_all(text: str, where: str) -> list[dict]:
    manifests = documents(text)
    assert manifests, f"{where}: nothing rendered"
    for manifest in manifests:
        name = f"{where}: {manifest['kind']}/{manifest['metadata']['name']}"
        validate_strict(manifest)
        check_no_secret_values(manifest)
        for pod in pod_specs(manifest):
            check_pod(pod, name)
    return manifests
