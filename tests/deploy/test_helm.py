"""The Helm chart, rendered and linted offline with helm-python-sdk (no helm binary): every render
validates and every Pod is restricted; the values schema rejects bad types and untagged images; the
GPU pool, the runs' ServiceAccount and what a run may reach go from the values into the pipeline;
multi-user Kubeflow gets its RBAC in the profile namespace; each identity holds only what it uses."""

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import check_all
from tests.deploy.netpol import Destination, Pod, egress_allowed, ingress_allowed, selects
from tests.deploy.upstream import (
    ISTIO_INJECTOR_OBJECT_SELECTOR,
    ML_PIPELINE_INGRESS,
    PIPELINE_JOB_TIME_PLACEHOLDERS,
    PROFILE_NAMESPACE_LABELS,
    check_runner_role,
)

helm = pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart (the dev extra)")

CHART = "helm/trackrec"
PROD = yaml.safe_load(open(f"{CHART}/values-prod.yaml"))


MULTI_USER = {"kfp": {"namespace": "team-a"}}


def render(values=None) -> dict[str, str]:
    return helm.Chart.load(CHART).render(values, name="trackrec", namespace="trackrec", is_install=True)


def manifests_of(values=None) -> dict[tuple[str, str, str], dict]:
    """(kind, namespace, name) -> manifest, each checked (schema, restricted Pods, no secret value)."""
    text = "\n---\n".join(t for p, t in render(values).items() if p.endswith(".yaml"))
    return {
        (m["kind"], m["metadata"].get("namespace", "trackrec"), m["metadata"]["name"]): m
        for m in check_all(text, "chart")
    }


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
    assert ("redis" in {m["metadata"]["name"] for m in manifests if m["kind"] == "StatefulSet"}) == (values is None)
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
    (scratch,) = k8s["executors"][align]["genericEphemeralVolume"]
    assert scratch["mountPath"] == "/cache" and scratch["size"] == "200Gi"
    summarize = next(name for name in executors if name.startswith("exec-summarize"))
    assert executors[summarize]["container"]["resources"]["accelerator"]["resourceCount"] == "1"
    assert pipeline["defaultPipelineRoot"] == "s3://ml-trackrec/pipeline-root"


@pytest.mark.parametrize("values", [None, MULTI_USER], ids=["single-user", "multi-user"])
def test_the_register_job_runs_exec_form_with_a_projected_kfp_token(values):
    where = "team-a" if values else "trackrec"  # multi-user: in the profile namespace
    job = manifests_of(values)[("Job", where, "trackrec-register")]["spec"]["template"]["spec"]
    (compile_retrain, compile_refresh), (retrain, schedule) = job["initContainers"], job["containers"]
    for compile_ in (compile_retrain, compile_refresh):
        assert compile_["command"] == ["trackrec", "compile"]
    assert "--refresh" in compile_refresh["args"] and "--refresh" not in compile_retrain["args"]
    assert schedule["command"] == retrain["command"] == ["trackrec", "schedule"]
    # the daily refresh of active users and the weekly retrain: two pipelines, two recurring runs
    assert "--cron=0 0 3 * * *" in schedule["args"] and "--settings=/etc/trackrec/settings.yaml" in schedule["args"]
    assert "--package=/work/refresh.yaml" in schedule["args"] and "--active-within-days=1" in schedule["args"]
    assert {"--cron=0 0 4 * * 0", "--retrain", "--package=/work/retrain.yaml"} <= set(retrain["args"])
    for container in (schedule, retrain):
        assert ("--namespace=team-a" in container["args"]) == (values is not None)
    assert job["serviceAccountName"] == "trackrec-register" and job["automountServiceAccountToken"] is False
    (token,) = [v for v in job["volumes"] if v["name"] == "kfp-token"]
    (source,) = token["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
    mounts = {m["name"]: m["mountPath"] for m in schedule["volumeMounts"]}
    assert mounts["kfp-token"] == "/var/run/secrets/kubeflow/pipelines"  # where `trackrec schedule` reads it


def test_multi_user_the_register_job_runs_where_kubeflows_ml_pipeline_policy_admits_it():
    manifests = manifests_of(MULTI_USER)
    (job,) = [m for (kind, _, _), m in manifests.items() if kind == "Job"]
    template = job["spec"]["template"]
    register = Pod(job["metadata"]["namespace"], template["metadata"]["labels"], PROFILE_NAMESPACE_LABELS)
    assert register.namespace == "team-a" and template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    api = Pod("kubeflow", {"app": "ml-pipeline"})
    assert ingress_allowed([ML_PIPELINE_INGRESS], register, api, 8888)  # kubeflow/manifests' side
    policies = [m for (kind, _, _), m in manifests.items() if kind == "NetworkPolicy"]
    assert egress_allowed(policies, register, Destination(8888, pod=api))  # and ours
    mounted = {v["configMap"]["name"] for v in template["spec"]["volumes"] if "configMap" in v}
    assert {("ConfigMap", "team-a", name) for name in mounted} <= set(manifests)
    assert ("ServiceAccount", "team-a", template["spec"]["serviceAccountName"]) in manifests
    assert job["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"  # logs kept
    where_it_was = Pod("trackrec", template["metadata"]["labels"])  # the release's namespace: refused
    assert not ingress_allowed([ML_PIPELINE_INGRESS], where_it_was, api, 8888)


def test_a_registry_with_a_port_and_digests_are_accepted_and_untagged_images_refused():
    chart = helm.Chart.load(CHART)
    digest = "@sha256:" + "a" * 64
    for image in ("registry.local:5000/team/cpu:1.0", "ghcr.io/trackrec/cpu:0.1.0" + digest, "redis:7.4.2-alpine"):
        chart.validate_schema({"images": {"cpu": image}})
    for image in ("ghcr.io/trackrec/cpu", "registry.local:5000/team/cpu", "cpu:latest", "cpu" + digest):
        with pytest.raises(helm.HelmValuesError, match="/images/cpu"):
            chart.validate_schema({"images": {"cpu": image}})


@pytest.mark.parametrize("values", [None, MULTI_USER], ids=["single-user", "multi-user"])
def test_the_runs_namespace_gets_the_runner_identity_least_privilege_storage_and_egress(values):
    manifests = manifests_of(values)
    runs = "team-a" if values else "kubeflow"  # standalone KFP runs every workflow in its own namespace
    check_runner_role(manifests[("Role", runs, "trackrec-pipeline-runner")]["rules"])
    binding = manifests[("RoleBinding", runs, "trackrec-pipeline-runner")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "trackrec-pipeline-runner", "namespace": runs}]
    assert ("ServiceAccount", runs, "trackrec-pipeline-runner") in manifests
    limits = manifests[("LimitRange", runs, "trackrec-run-storage")]["spec"]["limits"][0]
    assert set(limits["default"]) == set(limits["defaultRequest"]) == {"ephemeral-storage"}
    egress = manifests[("NetworkPolicy", runs, "trackrec-pipeline-egress")]["spec"]
    assert egress["podSelector"]["matchLabels"] == {"trackrec.io/pipeline": "true"} and egress["policyTypes"] == [
        "Egress"
    ]
    assert not [m for key, m in manifests.items() if key[0] in ("ClusterRole", "ClusterRoleBinding")]
    kfp_edit = ("RoleBinding", "team-a", "trackrec-register-kfp-edit")
    assert (kfp_edit in manifests) == (values is not None)
    if values:
        assert manifests[kfp_edit]["subjects"][0] == {
            "kind": "ServiceAccount",
            "name": "trackrec-register",
            "namespace": "team-a",
        }


@pytest.mark.parametrize("package", ["pipelines/trackrec.yaml", "pipelines/trackrec-refresh.yaml"])
def test_the_compiled_pipelines_need_nothing_the_runner_role_withholds(package):
    """upstream.NOT_NEEDED holds only while the pipeline avoids what would need them: job-time
    placeholders (the driver's workflows get), kfp-kubernetes PVC tasks (PVC create/delete), a
    pipeline root other than s3:// with the pods' keys (the launcher's secrets get)."""
    text = Path(package).read_text()
    assert not [p for p in PIPELINE_JOB_TIME_PLACEHOLDERS if p in text]
    assert "argostub/createpvc" not in text and "argostub/deletepvc" not in text
    pipeline, _ = yaml.safe_load_all(text)
    assert pipeline["defaultPipelineRoot"].startswith("s3://")


@pytest.mark.parametrize("values", [None, MULTI_USER], ids=["single-user", "multi-user"])
def test_a_task_pod_reaches_the_api_servers_endpoints_kfp_and_its_seaweedfs_after_dnat(values):
    policies = [m for (kind, _, _), m in manifests_of(values).items() if kind == "NetworkPolicy"]
    task = Pod("team-a" if values else "kubeflow", {"trackrec.io/pipeline": "true"})
    # the API server as a CNI matching after DNAT sees it: kubeadm's endpoint, a managed one, the ClusterIP
    for ip, port in (("192.168.10.2", 6443), ("35.190.1.2", 443), ("10.96.0.1", 443)):
        assert egress_allowed(policies, task, Destination(port, ip=ip)), f"{ip}:{port}"
    kubeflow = {
        8333: {"app": "seaweedfs"},  # seaweedfs:9000 and :8333 both land on the pod's 8333
        8888: {"app": "ml-pipeline"},
        8887: {"app": "ml-pipeline"},
        8080: {"component": "metadata-grpc-server"},
    }
    for port, labels in kubeflow.items():
        assert egress_allowed(policies, task, Destination(port, pod=Pod("kubeflow", labels))), port
    redis = Pod("trackrec", {"app.kubernetes.io/name": "redis"})
    assert not egress_allowed(policies, task, Destination(6379, pod=redis))  # the publish stage's alone
    assert not egress_allowed(policies, task, Destination(22, ip="192.168.10.2"))


def test_the_feature_server_listens_on_loopback_behind_the_read_only_front():
    manifests = manifests_of(PROD)
    pod = manifests[("Deployment", "trackrec", "feast-feature-server")]["spec"]["template"]["spec"]
    feast, front = pod["containers"]
    assert feast["command"][-4:] == ["--host", "127.0.0.1", "--port", "6567"] and "ports" not in feast
    assert (
        front["command"] == ["trackrec", "features", "read-only-front"] and "--tls-cert=/tls/tls.crt" in front["args"]
    )
    assert front["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert pod["serviceAccountName"] == "trackrec-feature-server" and pod["automountServiceAccountToken"] is False
    service = manifests[("Service", "trackrec", "feast-feature-server")]["spec"]
    assert service["ports"][0]["targetPort"] == "http" and front["ports"][0] == {"name": "http", "containerPort": 6566}


def test_what_a_run_may_reach_comes_from_the_values(tmp_path):
    from pipelines.compile import compile_pipeline, package_reach
    from pipelines.settings import PipelineSettings
    from trackrec.config import config_from_dict, config_to_dict, load_config
    from trackrec.reach import problems
    from trackrec.run_config import RunConfig

    data = yaml.safe_load(render(PROD)["trackrec/templates/pipeline-settings.yaml"])["data"]
    (tmp_path / "overrides.yaml").write_text(data["overrides.yaml"])
    settings = config_from_dict(PipelineSettings, yaml.safe_load(data["settings.yaml"]), "settings.yaml")
    assert settings.service_account == "trackrec-pipeline-runner"
    config = load_config("configs/cluster.yaml", RunConfig, tmp_path / "overrides.yaml")
    reach = package_reach(compile_pipeline(config, settings, tmp_path / "p.yaml"))
    assert reach.redis == ("redis.prod.internal:6380",) and reach.buckets == ("ml-trackrec",)
    assert reach.s3_endpoint == "http://minio.minio.svc.cluster.local:9000"
    assert [(t.endpoint, t.api_key_env) for t in reach.teachers] == [
        ("https://llm-gateway.prod.internal/v1", "TRACKREC_TEACHER_API_KEY")
    ]
    assert problems(config_to_dict(config), reach) == []  # the deployment's own config is within its reach


def test_the_compiled_pipelines_default_images_are_the_charts():
    """values.yaml names every deployed image; the settings' defaults (the checked-in compiled
    pipeline's) must be the same references."""
    from pipelines.settings import Images

    values = yaml.safe_load(open(f"{CHART}/values.yaml"))["images"]
    assert {name: getattr(Images(), name) for name in ("train", "infer", "cpu")} == {
        name: values[name] for name in ("train", "infer", "cpu")
    }


def test_the_charts_redis_is_durable_and_never_evicts():
    manifests = manifests_of()
    redis = manifests[("StatefulSet", "trackrec", "redis")]["spec"]
    pod = redis["template"]["spec"]
    (server,) = pod["containers"]
    args = server["args"]
    assert args[args.index("--appendonly") + 1] == "yes" and args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["replicas"] == 1 and redis["serviceName"] == "redis"
    (data,) = [v for v in pod["volumes"] if v["name"] == "data"]
    claim = manifests[("PersistentVolumeClaim", "trackrec", data["persistentVolumeClaim"]["claimName"])]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_the_charts_redis_writes_a_fresh_volume_answers_probes_and_reads_its_password_from_a_file():
    pod = manifests_of()[("StatefulSet", "trackrec", "redis")]["spec"]["template"]["spec"]
    security = pod["securityContext"]
    assert security["runAsUser"] == security["runAsGroup"] == security["fsGroup"] == 999  # the image's redis uid
    (init,), (server,) = pod["initContainers"], pod["containers"]
    assert server["readinessProbe"]["exec"]["command"][-1].endswith("ping | grep -qx PONG")
    assert server["livenessProbe"]["tcpSocket"] == server["startupProbe"]["tcpSocket"] == {"port": "redis"}
    assert server["command"] == ["redis-server"] and server["args"][0] == "/auth/redis.conf"
    for container in (init, server):
        assert "env" not in container and "--requirepass" not in container["args"]
        assert not [a for a in container["args"] if "REDIS_PASSWORD" in a]
    assert "/secret/password" in init["args"][0] and "> /auth/redis.conf" in init["args"][0]
    (auth,) = [v for v in pod["volumes"] if v["name"] == "auth"]
    assert auth["emptyDir"]["medium"] == "Memory"  # the rendered password never reaches a disk


def test_multi_node_training_values_reach_the_settings_the_runner_role_and_the_trainer_egress(tmp_path):
    values = {"training": {"nodes": 4, "storageClass": "nfs-rwx"}}
    manifests = manifests_of(values)
    check_runner_role(manifests[("Role", "kubeflow", "trackrec-pipeline-runner")]["rules"], trainjobs=True)
    trainers = manifests[("NetworkPolicy", "kubeflow", "trackrec-trainjob-egress")]["spec"]
    assert trainers["podSelector"]["matchLabels"] == {"trackrec.io/trainjob": "true"}
    assert [rule["to"] for rule in trainers["egress"]][-1] == [
        {"podSelector": {"matchLabels": {"trackrec.io/trainjob": "true"}}}
    ]
    # the base reaches the nodes through the workspace: the staging task (a pipeline pod) fetches it
    # from S3, the trainer pods (trackrec/cluster/trainjob.py's labels) reach only each other and DNS
    from trackrec.cluster.trainjob import NO_SIDECAR, TRAINER_LABEL

    policies = [m for (kind, _, _), m in manifests.items() if kind == "NetworkPolicy"]
    staging, node = (
        Pod("kubeflow", {"trackrec.io/pipeline": "true"}),
        Pod("kubeflow", {TRAINER_LABEL: "true"} | NO_SIDECAR),
    )
    s3 = Destination(443, ip="52.216.1.2")
    assert egress_allowed(policies, staging, s3) and not egress_allowed(policies, node, s3)
    assert egress_allowed(policies, node, Destination(29500, pod=node))  # torchrun's rendezvous
    data = yaml.safe_load(render(values)["trackrec/templates/pipeline-settings.yaml"])["data"]
    from pipelines.settings import PipelineSettings
    from trackrec.config import config_from_dict

    settings = config_from_dict(PipelineSettings, yaml.safe_load(data["settings.yaml"]), "settings.yaml")
    assert (settings.training.nodes, settings.training.storage_class) == (4, "nfs-rwx")
    single = manifests_of()  # one node: no TrainJob rights, no trainer policy
    check_runner_role(single[("Role", "kubeflow", "trackrec-pipeline-runner")]["rules"])
    assert ("NetworkPolicy", "kubeflow", "trackrec-trainjob-egress") not in single


@pytest.mark.parametrize("values", [None, PROD], ids=["default", "prod"])
def test_the_feature_servers_store_file_is_the_one_a_publisher_writes(values):
    """The chart's feature_store.yaml and trackrec's own (features/store.py: repo_yaml) describe the
    same store, so the feature server reads what the publish stage wrote."""
    from trackrec.features.store import StoreConfig, repo_yaml

    manifests = manifests_of(values)
    (configmap,) = [m for (kind, _, name), m in manifests.items() if (kind, name) == ("ConfigMap", "feast-repo")]
    served = yaml.safe_load(configmap["data"]["feature_store.yaml"])
    s3 = yaml.safe_load(open(f"{CHART}/values.yaml"))["s3"] | (values or {}).get("s3", {})
    publisher = StoreConfig(
        online="redis",
        redis=served["online_store"]["connection_string"],
        registry=f"s3://{s3['bucket']}/features/registry.db",
    )
    assert served == repo_yaml(publisher)


def test_prepare_shards_reach_the_settings_and_fan_prepare_data_out(tmp_path):
    from pipelines.compile import compile_pipeline
    from pipelines.settings import PipelineSettings
    from trackrec.config import config_from_dict, load_config
    from trackrec.run_config import RunConfig

    data = yaml.safe_load(render({"prepareShards": 4})["trackrec/templates/pipeline-settings.yaml"])["data"]
    settings = config_from_dict(PipelineSettings, yaml.safe_load(data["settings.yaml"]), "settings.yaml")
    assert settings.prepare_shards == 4
    pipeline, _ = yaml.safe_load_all(
        compile_pipeline(load_config("configs/cluster.yaml", RunConfig), settings, tmp_path / "p.yaml").read_text()
    )
    fan_out = pipeline["components"]["comp-prepare-fan-out"]["dag"]["tasks"]
    assert set(fan_out) == {"plan-prepare", "for-loop-1", "join-prepared"}
    assert "prepare-data" not in pipeline["root"]["dag"]["tasks"]
    with pytest.raises(helm.HelmValuesError, match="prepareShards"):
        helm.Chart.load(CHART).validate_schema({"prepareShards": 0})


def test_the_charts_per_stage_settings_name_the_stage_table():
    """A per-stage override (gpus, timeout) in the values is checked against the stage table's names."""
    from components.catalog import STAGES

    schema = json.loads((Path(CHART) / "values.schema.json").read_text())
    assert set(schema["properties"]["stages"]["propertyNames"]["enum"]) == set(STAGES)


@pytest.mark.parametrize("values", [None, PROD, MULTI_USER], ids=["default", "prod", "multi-user"])
def test_the_features_job_opens_the_publishers_store_from_beside_redis(values):
    """Operators run `trackrec features ...` as Jobs created from a suspended CronJob in the release's
    namespace: the publish stage's store, the Secrets there, no API token, and a network path to
    Redis (its egress, and Redis's ingress) and S3, nothing else."""
    from trackrec.config import config_from_dict
    from trackrec.features.store import StoreConfig

    manifests = manifests_of(values)
    cron = manifests[("CronJob", "trackrec", "trackrec-features")]["spec"]
    assert cron["suspend"] is True  # never runs on its own
    template = cron["jobTemplate"]["spec"]["template"]
    pod = template["spec"]
    assert not selects(ISTIO_INJECTOR_OBJECT_SELECTOR, template["metadata"]["labels"])  # no sidecar keeps it running
    assert pod["serviceAccountName"] == "trackrec-features" and pod["automountServiceAccountToken"] is False
    assert manifests[("ServiceAccount", "trackrec", "trackrec-features")]["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["command"] == ["trackrec", "features"] and container["args"] == ["list"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["TRACKREC_STORE"]["value"] == "/etc/trackrec/store.yaml"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "trackrec-redis", "key": "password"}
    store = yaml.safe_load(manifests[("ConfigMap", "trackrec", "trackrec-features")]["data"]["store.yaml"])
    data = yaml.safe_load(render(values)["trackrec/templates/pipeline-settings.yaml"])["data"]
    published = yaml.safe_load(data["overrides.yaml"])["features"]["store"]  # the publish stage's (a null: the default)
    assert store == {key: value for key, value in published.items() if value is not None} | {"repo": "/tmp/feast"}
    assert config_from_dict(StoreConfig, store, "store.yaml").online == "redis"
    policies = [m for (kind, _, _), m in manifests.items() if kind == "NetworkPolicy"]
    job = Pod("trackrec", template["metadata"]["labels"])
    if values is PROD:  # an external Redis, at the addresses egress.redis names
        assert egress_allowed(policies, job, Destination(6380, ip="10.30.0.5"))
        assert egress_allowed(policies, job, Destination(9000, pod=Pod("minio", {"app": "minio"})))
    else:
        redis = Pod("trackrec", {"app.kubernetes.io/name": "redis"})
        assert egress_allowed(policies, job, Destination(6379, pod=redis))
        assert ingress_allowed(policies, job, redis, 6379)
        assert egress_allowed(policies, job, Destination(443, ip="52.216.1.2"))  # S3
    assert not egress_allowed(policies, job, Destination(8888, pod=Pod("kubeflow", {"app": "ml-pipeline"})))
    assert not egress_allowed(policies, job, Destination(6443, ip="192.168.10.2"))  # no Kubernetes API


def test_the_features_job_can_be_turned_off():
    manifests = manifests_of({"featuresJob": {"enabled": False}})
    assert not [key for key in manifests if key[2] == "trackrec-features"]


def test_the_documented_way_to_run_any_features_command_gives_the_job_those_arguments():
    """docs/features.md's `kubectl create job --from ... | kubectl patch --local ...`: the Job
    `kubectl create job --from=cronjob/...` renders (the CronJob's jobTemplate), patched offline by
    kubectl with the documented patch, runs `trackrec features <the operator's arguments>`."""
    import re
    import subprocess

    from tests.conftest import required_tool

    kubectl = required_tool("kubectl")
    cron = manifests_of()[("CronJob", "trackrec", "trackrec-features")]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "rollback-alice-1", "namespace": "trackrec"}}
    job["spec"] = cron["spec"]["jobTemplate"]["spec"]
    (patch,) = re.findall(r"-p '(\[.*\])'", Path("docs/features.md").read_text())
    patched = subprocess.run(
        [kubectl, "patch", "--local", "-f", "-", "--type=json", "-o", "json", "-p", patch],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    (container,) = json.loads(patched.stdout)["spec"]["template"]["spec"]["containers"]
    assert container["command"] + container["args"] == ["trackrec", "features", "rollback", "--arm", "control"]
    assert {"name": "TRACKREC_STORE", "value": "/etc/trackrec/store.yaml"} in container["env"]  # the store, kept
