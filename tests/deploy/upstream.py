"""What upstream's code does under a run's ServiceAccount, read from its source: the one list the
runner Role is held to (tests/deploy/test_helm.py, test_kustomize.py). A pair is (apiGroup,
resource, verb); the Role must grant each, for the resource names given, and nothing else.

Read at kubeflow/pipelines 2.17.0 and argoproj/argo-workflows v4.0.5 (the version KFP 2.17's
go.mod pins). KFP 2.17 runs every pod of the Argo workflow (drivers, launchers, Argo's executor)
as the run's ServiceAccount (backend/src/v2/compiler/argocompiler/argo.go:178).
"""

from __future__ import annotations

# (apiGroup, resource, verb) -> the resource names it is limited to (None: any), and who needs it
RUNNER_NEEDS: dict[tuple[str, str, str], tuple[tuple[str, ...] | None, str]] = {
    # kubeflow/pipelines backend/src/v2/driver/root_dag.go:103 calls config.FromConfigMap,
    # backend/src/v2/config/env.go:73 gets ConfigMap "kfp-launcher" (env.go:37); every error but
    # NotFound is returned (env.go:74-81), so a 403 fails the run in its root driver. The importer
    # launcher reads it too (backend/src/v2/component/importer_launcher.go:331).
    ("", "configmaps", "get"): (("kfp-launcher",), "KFP's root-DAG driver (its launcher config)"),
    # argoproj/argo-workflows workflow/executor/taskresult.go:95 (Create) and :43, :61 (Patch); the
    # emissary executor's minimum (manifests/quick-start/base/executor/emissary/executor-role.yaml:9-15)
    ("argoproj.io", "workflowtaskresults", "create"): (None, "Argo's executor (a pod's outputs)"),
    ("argoproj.io", "workflowtaskresults", "patch"): (None, "Argo's executor (a pod's outputs)"),
}

# trackrec's own, with training.nodes > 1: trackrec/cluster/trainjob.py run_on_trainjob creates, reads
# and deletes the stage's TrainJob; follow_node_0 lists node 0's pod and reads its log (pods/log get),
# pod_states lists the TrainJob's pods for a failure
TRAINJOB_NEEDS: dict[tuple[str, str, str], tuple[tuple[str, ...] | None, str]] = {
    ("trainer.kubeflow.org", "trainjobs", verb): (None, "trackrec's TrainJob launch")
    for verb in ("create", "get", "delete")
} | {
    ("", "pods", "list"): (None, "trackrec's TrainJob wait (node 0's pod, the pods of a failure)"),
    ("", "pods/log", "get"): (None, "trackrec's TrainJob wait (node 0's log streamed into the task's)"),
}

# What upstream's code reads only in cases the compiled pipeline avoids; granting them would be
# broader than needed. test_helm.py's check of the compiled pipelines holds each condition.
NOT_NEEDED = {
    # backend/src/v2/objectstore/object_store.go:391 (S3), :278 (GCS): only for a kfp-launcher
    # `providers` entry with fromEnv false; the profile controller writes none (manifests/kustomize/
    # base/installs/multi-user/pipelines-profile-controller/sync.py:276-288) and trackrec's s3:// root
    # takes its keys from the pods' environment (backend/src/v2/config/s3.go:89-91)
    ("", "secrets", "get"),
    # backend/src/v2/component/launcher_v2.go:583-592,607: only without KFP_RETRY_INDEX, and a
    # failure is logged and ignored
    ("", "pods", "get"),
    # backend/src/v2/cmd/driver/main.go:178: only for a task input of {{$.pipeline_job_create_time_utc}}
    # or {{$.pipeline_job_schedule_time_utc}} (main.go:59-60, 198-225)
    ("argoproj.io", "workflows", "get"),
    # backend/src/v2/driver/k8s.go:967, :1087, :1093: only kfp-kubernetes' CreatePVC/DeletePVC tasks;
    # the run's workspace PVC is created by Argo's controller (argocompiler/argo.go:180)
    ("", "persistentvolumeclaims", "create"),
    ("", "persistentvolumeclaims", "delete"),
}

PIPELINE_JOB_TIME_PLACEHOLDERS = ("{{$.pipeline_job_create_time_utc}}", "{{$.pipeline_job_schedule_time_utc}}")


def granted(rules: list[dict]) -> dict[tuple[str, str, str], tuple[str, ...] | None]:
    """Each (apiGroup, resource, verb) a Role's rules grant -> its resource names (None: any)."""
    pairs: dict[tuple[str, str, str], tuple[str, ...] | None] = {}
    for rule in rules:
        names = tuple(rule["resourceNames"]) if rule.get("resourceNames") else None
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule["verbs"]:
                    pairs[(group, resource, verb)] = names
    return pairs


def check_runner_role(rules: list[dict], trainjobs: bool = False) -> None:
    """The Role grants every pair upstream needs, limited as recorded, and nothing else."""
    needs = RUNNER_NEEDS | (TRAINJOB_NEEDS if trainjobs else {})
    grants = granted(rules)
    for pair, (names, who) in needs.items():
        assert pair in grants, f"the runner Role lacks {pair}, {who} needs it"
        assert grants[pair] == names, f"{pair} is granted for {grants[pair] or 'every name'}, needs {names}"
    assert set(grants) == set(needs), f"broader than upstream needs: {sorted(set(grants) - set(needs))}"
    assert not {"*"} & {part for pair in grants for part in pair}, "a wildcard in the runner Role"


# kubeflow/manifests (HEAD 009c880, 2026-04) common/kubeflow-namespace/base/kubeflow/ml-pipeline.yaml:1-28:
# the KFP API admits only profile namespaces and istio-system (and, by default-allow-same-namespace.yaml,
# kubeflow's own pods)
ML_PIPELINE_INGRESS = {
    "metadata": {"name": "ml-pipeline", "namespace": "kubeflow"},
    "spec": {
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["ml-pipeline"]}]},
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "app.kubernetes.io/part-of", "operator": "In", "values": ["kubeflow-profile"]}
                            ]
                        }
                    },
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["istio-system"]}
                            ]
                        }
                    },
                ]
            }
        ],
        "policyTypes": ["Ingress"],
    },
}
# kubeflow/manifests applications/profiles/upstream/base/namespace-labels.yaml:15-18: what the
# profile controller labels a profile's namespace with
PROFILE_NAMESPACE_LABELS = {
    "katib.kubeflow.org/metrics-collector-injection": "enabled",
    "serving.kubeflow.org/inferenceservice": "enabled",
    "pipelines.kubeflow.org/enabled": "true",
    "app.kubernetes.io/part-of": "kubeflow-profile",
}

# kubeflow/manifests (HEAD 009c880) common/istio/istio-install/base/install.yaml:3638-3643: each of the
# sidecar injector's four webhooks (rev.namespace, rev.object, namespace, object) is sent only the pods
# this selector matches; a profile namespace is injected (the profile controller's istio-injection
# label, applications/profiles/upstream/base/namespace-labels.yaml:7 says how to remove it)
ISTIO_INJECTOR_OBJECT_SELECTOR = {
    "matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]
}
