"""The compiled pipeline: fresh, T copies of each iteration stage, GPU scheduling on GPU stages
only, S3 access from a Secret with no secret value; settings and parameters checked."""

import dataclasses
import re

import pytest
import yaml

from components.catalog import STAGES
from pipelines.compile import COMPILED, COMPILED_REFRESH, compile_pipeline, parse_parameters
from pipelines.settings import PipelineSettings
from trackrec.config import config_from_dict, load_config
from trackrec.errors import ConfigError
from trackrec.run_config import RunConfig, split_sections

CLUSTER = "configs/cluster.yaml"


def compiled(tmp_path, settings=None, config=CLUSTER):
    path = compile_pipeline(load_config(config, RunConfig), settings or PipelineSettings(), tmp_path / "p.yaml")
    pipeline, platform = yaml.safe_load_all(path.read_text())
    return path, pipeline, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def tasks_by_stage(pipeline) -> dict[str, list]:
    """stage -> every task running it, in the root DAG and the sub-pipelines."""
    dags = [pipeline["root"]["dag"]] + [c["dag"] for c in pipeline["components"].values() if "dag" in c]
    found: dict[str, list] = {}
    for dag in dags:
        for task in dag["tasks"].values():
            component = pipeline["components"][task["componentRef"]["name"]]
            if "executorLabel" in component:
                found.setdefault(executor_stage(component["executorLabel"]), []).append(task)
    return found


def executor_stage(executor: str) -> str:
    """Executors are named exec-<stage>[-N]."""
    name = executor.removeprefix("exec-").replace("-", "_")
    return next(stage for stage in sorted(STAGES, key=len, reverse=True) if name.startswith(stage))


def test_checked_in_yaml_equals_a_fresh_compile(tmp_path):
    path, _, _ = compiled(tmp_path)
    assert path.read_text() == COMPILED.read_text(), "pipelines/trackrec.yaml is stale: run `trackrec compile`"
    refresh = compile_pipeline(load_config(CLUSTER, RunConfig), PipelineSettings(), tmp_path / "r.yaml", refresh=True)
    assert refresh.read_text() == COMPILED_REFRESH.read_text(), "stale: run `trackrec compile --refresh`"


def test_the_refresh_trains_nothing_and_publishes_with_the_arms_generator(tmp_path):
    path = compile_pipeline(load_config(CLUSTER, RunConfig), PipelineSettings(), tmp_path / "r.yaml", refresh=True)
    stages = set(tasks_by_stage(next(yaml.safe_load_all(path.read_text()))))
    assert {"current_generator", "summarize", "encode", "publish", "prepare_data"} <= stages
    assert not stages & {"distill", "align", "rectune", "sample", "score", "greedy", "train_ctr", "ctr_judge"}


def test_iteration_stages_are_unrolled_t_times(tmp_path):
    _, pipeline, _ = compiled(tmp_path)
    counts = {stage: len(tasks) for stage, tasks in tasks_by_stage(pipeline).items()}
    t = load_config(CLUSTER, RunConfig).llm.iterations
    assert t == 3
    assert counts["distill"] == 1
    assert counts["align"] == t and counts["sample"] == t and counts["score"] == t
    assert counts["greedy"] == counts["rectune"] == counts["evaluate"] == t + 1  # iteration 0 too
    # sample, score, greedy x T, greedy 0, summarize, encode
    assert counts["plan_shards"] == counts["gather"] == 3 * t + 1 + 1 + 1
    for stage in ("prepare_data", "encode", "publish", "train_ctr", "summarize"):
        assert counts[stage] == 1


def every_stage(tmp_path) -> tuple[dict, dict]:
    """(executors, their Kubernetes specs) of every stage: prepare_data is one task or, with
    prepare_shards > 1, plan, shards and join; the refresh pipeline's own stage too."""
    _, pipeline, platform = compiled(tmp_path)
    _, fanned, fanned_platform = compiled(tmp_path, PipelineSettings(prepare_shards=2))
    prepare = {e: spec for e, spec in fanned["deploymentSpec"]["executors"].items() if "prepare" in e}
    path = compile_pipeline(load_config(CLUSTER, RunConfig), PipelineSettings(), tmp_path / "r.yaml", refresh=True)
    refresh, refresh_platform = yaml.safe_load_all(path.read_text())
    refresh_platform = refresh_platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    own = {e: spec for e, spec in refresh["deploymentSpec"]["executors"].items() if "current-generator" in e}
    executors = pipeline["deploymentSpec"]["executors"] | prepare | own
    assert {executor_stage(e) for e in executors} == set(STAGES)
    return executors, platform | {e: fanned_platform[e] for e in prepare} | {e: refresh_platform[e] for e in own}


def test_gpu_resources_tolerations_and_shm_only_on_gpu_stages(tmp_path):
    executors, platform = every_stage(tmp_path)
    for name, executor in executors.items():
        stage, resources = executor_stage(name), executor["container"]["resources"]
        k8s = platform[name]
        if STAGES[stage].gpu:
            accelerator = resources["accelerator"]
            assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("nvidia.com/gpu", "1"), name
            assert k8s["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
            assert k8s["nodeSelector"]["labels"] == {"trackrec.io/pool": "gpu"}
            assert (
                k8s["emptyDirMounts"][0]["mountPath"] == "/dev/shm" and k8s["emptyDirMounts"][0]["medium"] == "Memory"
            )
            assert k8s["activeDeadlineSeconds"] == str(6 * 3600) or k8s["activeDeadlineSeconds"] == 6 * 3600
        else:
            assert "accelerator" not in resources, name
            assert "tolerations" not in k8s and "nodeSelector" not in k8s and "genericEphemeralVolume" not in k8s
            assert [m["mountPath"] for m in k8s["emptyDirMounts"]] == ["/cache"], name  # no /dev/shm
        assert resources["resourceCpuLimit"] and resources["resourceMemoryLimit"] and resources["resourceCpuRequest"]


def pipeline_pod(executor: dict, k8s: dict) -> dict:
    """The Pod KFP's backend makes of one task: the compiled resources, volumes and identity, plus
    what KFP 2.17's backend always adds to a task's container (no privilege escalation, all
    capabilities dropped, seccomp RuntimeDefault; `kfp.kubernetes.set_security_context`)."""
    resources = executor["container"]["resources"]
    identity = {camel: int(k8s["securityContext"][camel]) for camel in ("runAsUser", "runAsGroup")}
    mounts = [{"name": m["volumeName"], "mountPath": m["mountPath"]} for m in k8s.get("emptyDirMounts", [])]
    volumes = [
        {"name": m["volumeName"], "emptyDir": {"sizeLimit": m["sizeLimit"]} | {"medium": m.get("medium", "")}}
        for m in k8s.get("emptyDirMounts", [])
    ]
    for volume in k8s.get("genericEphemeralVolume", []):
        mounts.append({"name": volume["volumeName"], "mountPath": volume["mountPath"]})
        claim = {"accessModes": volume["accessModes"], "resources": {"requests": {"storage": volume["size"]}}}
        volumes.append({"name": volume["volumeName"], "ephemeral": {"volumeClaimTemplate": {"spec": claim}}})
    container = {
        "name": "main",
        "image": executor["container"]["image"],
        "resources": {
            "requests": {"cpu": resources["resourceCpuRequest"], "memory": resources["resourceMemoryRequest"]},
            "limits": {"cpu": resources["resourceCpuLimit"], "memory": resources["resourceMemoryLimit"]},
        },
        "securityContext": identity
        | {
            "runAsNonRoot": k8s["securityContext"]["runAsNonRoot"],
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    pod_security = identity | {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    spec = {"containers": [container], "volumes": volumes, "securityContext": pod_security}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "task"}, "spec": spec}


def test_every_task_is_restricted_non_root_has_scratch_disk_and_retries(tmp_path):
    from tests.deploy.manifests import check_all

    executors, platform = every_stage(tmp_path)
    for name, executor in executors.items():
        k8s = platform[name]
        assert k8s["securityContext"] == {"runAsUser": "10001", "runAsGroup": "10001", "runAsNonRoot": True}, name
        check_all(yaml.safe_dump(pipeline_pod(executor, k8s)), name)  # schema-valid and Pod Security "restricted"
        scratch = [m for m in k8s.get("emptyDirMounts", []) + k8s.get("genericEphemeralVolume", [])]
        (cache,) = [m for m in scratch if m["mountPath"] == "/cache"]
        assert cache.get("sizeLimit", cache.get("size")) == ("200Gi" if STAGES[executor_stage(name)].gpu else "20Gi")
    _, pipeline, _ = compiled(tmp_path, PipelineSettings(prepare_shards=2))
    for stage, tasks in tasks_by_stage(pipeline).items():
        for task in tasks:
            policy = task["retryPolicy"]
            assert policy["maxRetryCount"] == 2 and policy["backoffDuration"] == "60s", stage


def test_s3_credentials_come_from_a_secret_and_no_value_is_in_the_yaml(tmp_path, monkeypatch):
    marker = "not-a-real-secret-4f1c9"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", marker)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", marker)
    path, _, platform = compiled(tmp_path)
    assert marker not in path.read_text()
    for name, k8s in platform.items():
        secrets = {secret["secretName"]: secret for secret in k8s["secretAsEnv"]}
        stage = executor_stage(name)
        extra = {"publish": {"trackrec-redis"}, "distill": {"trackrec-teacher"}}.get(stage, set())
        assert set(secrets) == {"trackrec-s3"} | extra, name  # the teacher's key reaches the distill pod alone
        if stage == "distill":
            (key,) = secrets["trackrec-teacher"]["keyToEnv"]
            assert key == {"secretKey": "api-key", "envVar": "TRACKREC_TEACHER_API_KEY"}
        s3_env = {e["envVar"] for e in secrets["trackrec-s3"]["keyToEnv"]}
        assert s3_env == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_settings_reach_the_scheduling(tmp_path):
    raw = {
        "gpu_pool": {
            "accelerator": "amd.com/gpu",
            "gpus": 2,
            "node_selector": {"pool": "mi300"},
            "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "stages": {"align": {"gpus": 8, "timeout_s": 100}},
        "images": {"train": "registry.example/train@sha256:" + "0" * 64},
    }
    _, pipeline, platform = compiled(tmp_path, config_from_dict(PipelineSettings, raw))
    executors = pipeline["deploymentSpec"]["executors"]
    align = next(e for e in executors if executor_stage(e) == "align")
    assert executors[align]["container"]["resources"]["accelerator"]["resourceCount"] == "8"
    assert executors[align]["container"]["image"].startswith("registry.example/train@sha256:")
    assert platform[align]["activeDeadlineSeconds"] in (100, "100")
    sample = next(e for e in executors if executor_stage(e) == "sample")
    accelerator = executors[sample]["container"]["resources"]["accelerator"]
    assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("amd.com/gpu", "2")
    assert platform[sample]["nodeSelector"]["labels"] == {"pool": "mi300"}


def test_a_partial_gpu_pool_settings_file_keeps_every_default_it_does_not_override(tmp_path):
    (tmp_path / "settings.yaml").write_text("gpu_pool: {gpus: 8}\n")
    settings = load_config(tmp_path / "settings.yaml", PipelineSettings)
    assert settings.gpu_pool == dataclasses.replace(PipelineSettings().gpu_pool, gpus=8)
    _, pipeline, platform = compiled(tmp_path, settings)
    align = next(e for e in pipeline["deploymentSpec"]["executors"] if executor_stage(e) == "align")
    resources = pipeline["deploymentSpec"]["executors"][align]["container"]["resources"]
    assert resources["accelerator"]["resourceCount"] == "8"
    assert (resources["resourceCpuLimit"], resources["resourceMemoryLimit"]) == ("8", "64Gi")
    assert platform[align]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert platform[align]["nodeSelector"]["labels"] == {"trackrec.io/pool": "gpu"}
    assert platform[align]["genericEphemeralVolume"][0]["size"] == "200Gi"
    assert platform[align]["activeDeadlineSeconds"] in (6 * 3600, str(6 * 3600))


def test_the_sharded_sub_pipelines_are_the_stage_tables_sharded_stages(tmp_path):
    _, pipeline, _ = compiled(tmp_path)
    sub_pipelines = {
        re.sub(r"-\d+$", "", name) for name in pipeline["components"] if "dag" in pipeline["components"][name]
    }
    fanned_out = {
        name.removeprefix("comp-").removesuffix("-shards") for name in sub_pipelines if name.endswith("-shards")
    }
    assert fanned_out == {name for name, stage in STAGES.items() if stage.sharded}


def test_unknown_stage_in_settings_is_named():
    with pytest.raises(ConfigError) as error:
        config_from_dict(PipelineSettings, {"stages": {"algin": {"gpus": 2}, "publish": {"gpus": 1}}})
    assert "stages.algin: unknown stage" in str(error.value) and "stages.publish.gpus: publish is a CPU stage" in str(
        error.value
    )


def test_parameters_unknown_badly_typed_and_zero_shards_are_reported_together():
    with pytest.raises(ConfigError) as error:
        parse_parameters(COMPILED_REFRESH, ["shard=2", "shards=0", "active_within_days=soon", "config"])
    text = str(error.value)
    assert "shard: unknown parameter (known: ['active_within_days', 'config', 'shards'])" in text
    assert "shards: must be >= 1, got 0" in text and "active_within_days: 'soon' is not a number_integer" in text
    assert "'config': expected name=value" in text
    assert parse_parameters(COMPILED, ["shards=4"]) == {"shards": 4}
    with pytest.raises(ConfigError, match="active_within_days: unknown parameter"):
        parse_parameters(COMPILED, ["active_within_days=7"])  # a retrain summarises every user


def test_a_config_of_another_shape_than_the_compiled_pipeline_is_refused():
    import json

    from trackrec.config import config_to_dict

    config = config_to_dict(load_config(CLUSTER, RunConfig))
    with pytest.raises(ConfigError, match="compiled for T=2, the config says 3"):
        split_sections(json.dumps(config), 2, True)
    with pytest.raises(ConfigError, match="ctr: backbone: unknown 'nope'"):
        split_sections(json.dumps(config | {"ctr": {"backbone": "nope"}}), 3, True)
    sections = split_sections(json.dumps(config), 3, True)
    assert json.loads(sections["llm"])["iterations"] == 3 and json.loads(sections["ctr"])["backbone"] == "din"


def test_each_iteration_starts_after_the_last_evaluate_so_the_report_grows_as_the_loop_runs(tmp_path):
    _, pipeline, _ = compiled(tmp_path)
    root = pipeline["root"]["dag"]["tasks"]
    evaluates = {name for name, task in root.items() if task["componentRef"]["name"].startswith("comp-evaluate")}
    waiting = {
        name: set(task.get("dependentTasks", []))
        for name, task in root.items()
        if task["componentRef"]["name"].startswith(("comp-sample-shards", "comp-summarize-shards"))
    }
    t = load_config(CLUSTER, RunConfig).llm.iterations
    assert len(waiting) == t + 1 and len(evaluates) == t + 1
    assert all(len(after & evaluates) == 1 for after in waiting.values())


def test_algorithm_2_wiring_which_g_and_which_v_each_task_reads(tmp_path):
    """T = 2: G(t-1) samples, V(t-1) scores (or, under reward ctr, the CTR judge trained on G(t-1)'s
    greedy RecCoTs), align makes G(t) from G(t-1), V(t) is Rec-tuned from V(t-1) on G(t)'s greedy
    RecCoTs and evaluated on them beside judge(t); the features come from G(T)."""
    raw = yaml.safe_load(open("configs/local.yaml"))
    raw["llm"]["iterations"] = 2  # whatever the demo runs
    (tmp_path / "t2.yaml").write_text(yaml.safe_dump(raw))
    _, pipeline, _ = compiled(tmp_path, config=tmp_path / "t2.yaml")
    tasks = pipeline["root"]["dag"]["tasks"]
    display = {key: task["taskInfo"]["name"] for key, task in tasks.items()}
    models = (
        "generator",
        "previous",
        "validator",
        "greedy",
        "reccots",
        "scored",
        "sampled",
        "fixed_validator",
        "judge",
    )
    reads = {
        display[key]: {
            name: display[artifact["taskOutputArtifact"]["producerTask"]]
            for name, artifact in task.get("inputs", {}).get("artifacts", {}).items()
            if name in models
        }
        for key, task in tasks.items()
    }
    expected = {
        "greedy 0": {"generator": "distill G0"},
        "rectune V0": {"greedy": "greedy 0"},
        "CTR judge 0": {"greedy": "greedy 0"},
        "evaluate 0": {"greedy": "greedy 0", "validator": "rectune V0", "judge": "CTR judge 0"},
        "sample 1": {"generator": "distill G0"},
        "score 1": {"sampled": "sample 1", "validator": "rectune V0", "judge": "CTR judge 0"},
        "align G1": {"previous": "distill G0", "scored": "score 1"},
        "greedy 1": {"generator": "align G1"},
        "rectune V1": {"greedy": "greedy 1", "previous": "rectune V0"},
        "CTR judge 1": {"greedy": "greedy 1"},
        "evaluate 1": {
            "greedy": "greedy 1",
            "validator": "rectune V1",
            "judge": "CTR judge 1",
            "scored": "score 1",
            "fixed_validator": "rectune V0",
        },
        "sample 2": {"generator": "align G1"},
        "score 2": {"sampled": "sample 2", "validator": "rectune V1", "judge": "CTR judge 1"},
        "align G2": {"previous": "align G1", "scored": "score 2"},
        "greedy 2": {"generator": "align G2"},
        "rectune V2": {"greedy": "greedy 2", "previous": "rectune V1"},
        "CTR judge 2": {"greedy": "greedy 2"},
        "evaluate 2": {
            "greedy": "greedy 2",
            "validator": "rectune V2",
            "judge": "CTR judge 2",
            "scored": "score 2",
            "fixed_validator": "rectune V0",
        },
        "summarize users": {"generator": "align G2"},
        "encode": {"reccots": "summarize users"},
        "publish to Feast": {"generator": "align G2"},  # kept with the version, for the refresh runs
    }
    assert {name: reads[name] for name in expected} == expected
    assert not any(reads[name] for name in set(reads) - set(expected))  # no other task reads a model


def test_each_section_reaches_only_its_stages_so_a_change_reruns_only_them(tmp_path):
    """KFP's cache keys on a task's inputs: the final CTR model's section must not reach the loop
    (the judge has its own), the encoder only encode, the arm and store only publish."""
    _, pipeline, _ = compiled(tmp_path, config="configs/local.yaml")
    readers: dict[str, set] = {}
    for task in pipeline["root"]["dag"]["tasks"].values():  # a sharded stage's task is its sub-pipeline
        stage = re.sub(r"^comp-|(-shards)?(-\d+)?$", "", task["componentRef"]["name"]).replace("-", "_")
        for value in task.get("inputs", {}).get("parameters", {}).values():
            produced = value.get("taskOutputParameter", {})
            if produced.get("producerTask") == "split-config":
                readers.setdefault(produced["outputParameterKey"], set()).add(stage)
    assert readers["ctr"] == {"train_ctr"}
    assert readers["judge"] == {"ctr_judge"}
    assert readers["encoder"] == {"encode"} and readers["features"] == {"publish"}
    assert readers["llm"] >= {"distill", "sample", "score", "align", "evaluate"}  # the loop reads llm


def test_the_ctr_models_join_snapshots_with_the_stores_ttl():
    """The final CTR model and the judge read snapshots as Feast's join does: the same TTL."""
    import json

    raw = {"llm": {}, "features": {"store": {"ttl_days": 30}}}
    sections = split_sections(json.dumps(raw), 3, True)
    assert json.loads(sections["ctr"])["vector_ttl_days"] == 30
    assert json.loads(sections["judge"])["ctr"]["vector_ttl_days"] == 30
    with pytest.raises(ConfigError, match=r"ctr.vector_ttl_days: set by features.store.ttl_days \(30\), got 5"):
        config_from_dict(RunConfig, raw | {"ctr": {"vector_ttl_days": 5}})


def cluster_pipelines(tmp_path) -> dict[str, tuple[dict, dict, PipelineSettings]]:
    """name -> (pipeline, its Kubernetes platform spec, the settings) of the cluster's retrain (one
    node and TrainJobs) and refresh."""
    multi_node = config_from_dict(PipelineSettings, {"training": {"nodes": 4}})
    shapes = {"retrain": (PipelineSettings(), False), "retrain on 4 nodes": (multi_node, False)}
    shapes["refresh"] = (PipelineSettings(), True)
    found = {}
    for name, (settings, refresh) in shapes.items():
        path = compile_pipeline(load_config(CLUSTER, RunConfig), settings, tmp_path / f"{name}.yaml", refresh)
        pipeline, platform = yaml.safe_load_all(path.read_text())
        found[name] = (pipeline, platform["platforms"]["kubernetes"], settings)
    return found


def runs_on_gpu(pipeline, task) -> bool:
    """A root task that is a GPU stage or a sub-pipeline holding one."""
    component = pipeline["components"][task["componentRef"]["name"]]
    if "dag" in component:
        return any(runs_on_gpu(pipeline, inner) for inner in component["dag"]["tasks"].values())
    return STAGES[executor_stage(component["executorLabel"])].gpu


def test_one_task_stages_the_base_on_the_runs_workspace_and_every_gpu_task_reads_it_there(tmp_path):
    """Every GPU task's workspace input (in a shard: through its sub-pipeline's) is the staging
    task's output, so it starts after the staging task and KFP mounts the workspace; the staging
    task is then the run's one fetch from S3 (bench/model_downloads.py counts it from the IR)."""
    from bench.model_downloads import downloads, pods

    for name, (pipeline, platform, settings) in cluster_pipelines(tmp_path).items():
        assert platform["pipelineConfig"]["workspace"]["kubernetes"]["pvcSpecPatch"]["accessModes"] == [
            "ReadWriteMany"
        ], name
        root = pipeline["root"]["dag"]["tasks"]
        (staging,) = [key for key, task in root.items() if task["componentRef"]["name"] == "comp-stage-base"]
        inputs = root[staging]["inputs"]["parameters"]
        assert inputs["workspace"]["runtimeValue"]["constant"] == "{{$.workspace_path}}", name
        assert not root[staging]["cachingOptions"].get("enableCache"), name  # a cached answer: an empty workspace
        gpu = [key for key, task in root.items() if runs_on_gpu(pipeline, task)]
        assert gpu and all(staging in root[key]["dependentTasks"] for key in gpu), name
        found = pods(pipeline, shards=16)
        assert all(staged for stage, _, staged in found if stage != "stage_base"), name
        before, after = downloads(found, settings)
        assert after == 1 and before >= 16, name


def test_a_local_run_keeps_this_machines_cache_no_workspace_no_staging(tmp_path):
    from kfp import compiler

    from pipelines.trackrec_pipeline import build_pipeline

    pipeline = build_pipeline(3, True, PipelineSettings(), cluster=False)
    compiler.Compiler().compile(pipeline, str(tmp_path / "local.yaml"))
    spec, platform = yaml.safe_load_all((tmp_path / "local.yaml").read_text())
    assert "pipelineConfig" not in platform["platforms"]["kubernetes"]
    assert "stage_base" not in tasks_by_stage(spec)
    assert "{{$.workspace_path}}" not in (tmp_path / "local.yaml").read_text()
