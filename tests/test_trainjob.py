"""Multi-node training: align and rectune compiled to launch a Kubeflow Trainer TrainJob, the
TrainJob checked against the Trainer API's own models (kubeflow-trainer-api, generated from its
CRDs), and the launcher's create / wait / retry against a Kubernetes API on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml
from kfp.dsl import TaskConfig

from components.catalog import STAGES
from pipelines.compile import compile_pipeline
from pipelines.settings import PipelineSettings
from tests.deploy.netpol import selects
from tests.deploy.upstream import ISTIO_INJECTOR_OBJECT_SELECTOR
from trackrec.cluster.job import Job
from trackrec.cluster.trainjob import (
    POLL_FAILURES,
    Nodes,
    TrainJobError,
    run_on_trainjob,
    stage_job,
    trainjob_manifest,
)
from trackrec.config import config_from_dict, load_config
from trackrec.llm.base_model import run_cache
from trackrec.run_config import RunConfig
from trackrec.stages.align import align
from trackrec.stages.outputs import Trained
from trackrec.stages.rectune import rectune

TRAINJOB_STAGES = tuple(name for name, stage in STAGES.items() if stage.trainjob)
MULTI_NODE = {"training": {"nodes": 4, "storage_class": "nfs-rwx"}, "stages": {s: {"gpus": 8} for s in TRAINJOB_STAGES}}


@pytest.fixture(scope="module")
def multi_node(tmp_path_factory):
    settings = config_from_dict(PipelineSettings, MULTI_NODE)
    path = tmp_path_factory.mktemp("compiled") / "p.yaml"
    compile_pipeline(load_config("configs/cluster.yaml", RunConfig), settings, path)
    pipeline, platform = yaml.safe_load_all(path.read_text())
    return pipeline, platform["platforms"]["kubernetes"]


def training_tasks(pipeline) -> dict[str, dict]:
    tasks = pipeline["root"]["dag"]["tasks"]
    return {name: task for name, task in tasks.items() if name.startswith(TRAINJOB_STAGES)}


def test_training_tasks_hand_their_gpu_pool_to_a_trainjob_and_share_an_rwx_workspace(multi_node):
    pipeline, platform = multi_node
    assert platform["pipelineConfig"]["workspace"]["size"] == "500Gi"
    claim = platform["pipelineConfig"]["workspace"]["kubernetes"]["pvcSpecPatch"]
    assert claim == {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs-rwx"}
    passing = {
        name.rstrip("-0123456789") for name, c in pipeline["components"].items() if "taskConfigPassthroughs" in c
    }
    assert passing == {"comp-distill", "comp-align", "comp-rectune"}
    fields = {
        p["field"]: p.get("applyToTask", False) for p in pipeline["components"]["comp-align"]["taskConfigPassthroughs"]
    }
    # the GPU pool goes to the TrainJob, not the waiting task; environment and volumes to both
    assert fields == {
        "RESOURCES": False,
        "KUBERNETES_TOLERATIONS": False,
        "KUBERNETES_NODE_SELECTOR": False,
        "ENV": True,
        "KUBERNETES_VOLUMES": True,
    }
    tasks = training_tasks(pipeline)
    assert len(tasks) == 1 + 3 + 4  # distill, align x T, rectune x (T + 1)
    for task in tasks.values():
        parameters = task["inputs"]["parameters"]
        nodes = json.loads(parameters["nodes"]["runtimeValue"]["constant"])
        assert nodes == {
            "nodes": 4,
            "runtime": "torch-distributed",
            "image": PipelineSettings().images.train,
            "timeout_s": 6 * 3600,
            "run_as_user": 10001,
            "shm": "16Gi",  # the GPU pool's /dev/shm, for each node
        }
        assert parameters["workspace"]["taskOutputParameter"]["producerTask"] == "stage-base"  # the staged base
    accelerator = pipeline["deploymentSpec"]["executors"]["exec-align"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceCount"] == "8"  # forwarded to every TrainJob node


def test_single_node_settings_compile_no_trainjob_but_the_runs_workspace(tmp_path):
    path = compile_pipeline(load_config("configs/cluster.yaml", RunConfig), PipelineSettings(), tmp_path / "p.yaml")
    pipeline, platform = yaml.safe_load_all(path.read_text())
    assert platform["platforms"]["kubernetes"]["pipelineConfig"]["workspace"]["size"] == "500Gi"  # the staged base
    assert not any("taskConfigPassthroughs" in c for c in pipeline["components"].values())
    assert all("nodes" not in t["inputs"]["parameters"] for t in training_tasks(pipeline).values())


def kfp_task_config(pipeline, platform) -> TaskConfig:
    """The TaskConfig KFP's driver hands the align task: its resources, tolerations, node selector,
    environment and volumes (the workspace PVC among them), in Kubernetes' own JSON."""
    resources = pipeline["deploymentSpec"]["executors"]["exec-align"]["container"]["resources"]
    k8s = platform["deploymentSpec"]["executors"]["exec-align"]
    gpu = resources["accelerator"]
    limits = {"cpu": resources["resourceCpuLimit"], "memory": resources["resourceMemoryLimit"]}
    return TaskConfig(
        resources={
            "requests": {"cpu": resources["resourceCpuRequest"], "memory": resources["resourceMemoryRequest"]},
            "limits": limits | {gpu["resourceType"]: gpu["resourceCount"]},
        },
        tolerations=k8s["tolerations"],
        node_selector=k8s["nodeSelector"]["labels"],
        env=[{"name": "TRACKREC_GPUS", "value": "8"}],
        volumes=[{"name": "kfp-workspace", "persistentVolumeClaim": {"claimName": "run-1-workspace"}}],
        volume_mounts=[{"name": "kfp-workspace", "mountPath": "/kfp-workspace"}],
    )


def nodes() -> Nodes:
    return Nodes(
        nodes=4, runtime="torch-distributed", image="ghcr.io/trackrec/train:0.1.0", timeout_s=60, run_as_user=10001
    )


def as_the_crd_reads_it(manifest: dict) -> dict:
    """The manifest through the Trainer API's models: fields it does not define are dropped, wrong
    types raise; what comes back is what the cluster would store."""
    from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

    return TrainerV1alpha1TrainJob.from_dict(manifest).to_dict()


def test_the_trainjob_matches_the_trainer_api_and_carries_the_gpu_pool(multi_node):
    config = kfp_task_config(*multi_node)
    manifest = trainjob_manifest(
        "trackrec-align-1", "team-a", "align", Path("/kfp-workspace/j/job.json"), nodes(), config
    )
    assert as_the_crd_reads_it(manifest) == manifest
    trainer = manifest["spec"]["trainer"]
    assert trainer["numNodes"] == 4 and trainer["image"] == "ghcr.io/trackrec/train:0.1.0"
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    assert trainer["command"] == ["torchrun", "-m", "trackrec.cluster.job", "/kfp-workspace/j/job.json"]
    (patch,) = manifest["spec"]["runtimePatches"]
    (job,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = job["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"trackrec.io/pool": "gpu"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "kfp-workspace", "mountPath": "/kfp-workspace"},
        {"name": "dshm", "mountPath": "/dev/shm"},  # KFP's passthrough carries no emptyDir: the TrainJob adds it
    ]
    assert pod["volumes"][-1] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    labels = job["template"]["spec"]["template"]["metadata"]["labels"]
    # the trainer egress policy selects them; Istio's injector never sees them in a profile namespace
    assert labels == {"trackrec.io/trainjob": "true", "sidecar.istio.io/inject": "false"}
    assert not selects(ISTIO_INJECTOR_OBJECT_SELECTOR, labels)
    misspelt = json.loads(json.dumps(manifest))
    misspelt["spec"]["trainer"]["numNode"] = misspelt["spec"]["trainer"].pop("numNodes")
    assert as_the_crd_reads_it(misspelt) != misspelt  # the check sees a field the CRD does not have


def test_distills_nodes_get_the_tasks_environment_but_the_teachers_key(multi_node):
    """distill asks the teacher in its own pod; its TrainJob only trains, so the key stays behind."""
    config = kfp_task_config(*multi_node)
    secret = {"secretKeyRef": {"name": "trackrec-teacher", "key": "api-key"}}
    config.env = [*config.env, {"name": "TRACKREC_TEACHER_API_KEY", "valueFrom": secret}]
    job = Path("/kfp-workspace/j/job.json")
    manifest = trainjob_manifest(
        "trackrec-distill-1", "team-a", "distill", job, nodes(), config, ("TRACKREC_TEACHER_API_KEY",)
    )
    names = [variable["name"] for variable in manifest["spec"]["trainer"]["env"]]
    assert names == ["TRACKREC_GPUS", "TRACKREC_CACHE"] and as_the_crd_reads_it(manifest) == manifest
    kept = trainjob_manifest("trackrec-align-1", "team-a", "align", job, nodes(), config)
    assert "TRACKREC_TEACHER_API_KEY" in [variable["name"] for variable in kept["spec"]["trainer"]["env"]]


def test_the_job_file_carries_the_inputs_and_the_deepspeed_config_to_the_nodes(tmp_path):
    scored, generator = tmp_path / "scored", tmp_path / "g0"
    for folder in (scored, generator):
        folder.mkdir()
        (folder / "file").write_text(folder.name)
    llm = json.dumps({"align_train": {"deepspeed": "configs/deepspeed/zero3.json"}})
    inputs = {"scored": str(scored), "previous": str(generator)}
    (tmp_path / "ws").mkdir()
    moved = Job.load(stage_job(Job.of(align, inputs, llm, "/kfp/outputs/aligned"), tmp_path / "ws"))
    assert moved.function == "trackrec.stages.align:align" and moved.stage == "align"
    assert Path(moved.inputs["scored"], "file").read_text() == "scored"  # copied into the workspace
    assert Path(moved.inputs["previous"], "file").read_text() == "g0"
    assert moved.output == str(tmp_path / "ws" / "output")  # rank 0 writes here, the task copies it out
    assert json.loads(moved.llm)["align_train"]["deepspeed"] == "configs/deepspeed/zero3.json"


class FakeKubernetes:
    """A Kubernetes API on 127.0.0.1 serving TrainJobs as Kubeflow Trainer's controller would
    leave them: `finish(body)` plays the nodes (writes the adapter) and returns the final condition.
    Each TrainJob gets two pods, labelled as JobSet labels them; node 0's log is NODE_0_LOG."""

    NODE_0_LOG = "rank 0: step 1 loss 0.5\nrank 0: saved the adapter\n"

    def __init__(self, finish):
        self.jobs, self.pods, self.requests, self.finish = {}, {}, [], finish
        self.failing_reads = 0  # the next reads of an existing TrainJob answered 500, as a restarting API server
        self.silent_s = 0.0  # how long each POST (a TrainJob's creation) goes unanswered, as a stalled API server
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict | str) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                server.requests.append(("GET", self.path))
                path, _, query = self.path.partition("?")
                if path.endswith("/pods"):
                    selector = parse_qs(query)["labelSelector"][0]
                    wanted = dict(pair.split("=") for pair in selector.split(","))
                    items = [pod for pod in server.pods.values() if wanted.items() <= pod["metadata"]["labels"].items()]
                    self._reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                elif path.endswith("/log"):
                    self._reply(200, server.NODE_0_LOG)
                elif path.rsplit("/", 1)[-1] in server.jobs and server.failing_reads:
                    server.failing_reads -= 1
                    self._reply(500, {"kind": "Status", "code": 500, "reason": "InternalError"})
                elif path.rsplit("/", 1)[-1] in server.jobs:
                    self._reply(200, server.jobs[path.rsplit("/", 1)[-1]])
                else:
                    self._reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

            def do_POST(self):
                server.requests.append(("POST", self.path))
                time.sleep(server.silent_s)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                condition = server.finish(body)
                name = body["metadata"]["name"]
                server.jobs[name] = body | {"status": {"conditions": [condition]}}
                server.pods.update(pods_of(name, failed=condition["type"] == "Failed"))
                self._reply(201, body)

            def do_DELETE(self):
                server.requests.append(("DELETE", self.path))
                name = self.path.rsplit("/", 1)[-1]
                server.jobs.pop(name, None)
                server.pods = {k: v for k, v in server.pods.items() if not k.startswith(name)}
                self._reply(200, {"kind": "Status", "status": "Success"})

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def api(self):
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{self.http.server_address[1]}"
        return client.CustomObjectsApi(client.ApiClient(configuration))

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def pods_of(trainjob: str, failed: bool) -> dict[str, dict]:
    """Node 0's and node 1's pods as JobSet names and labels them; node 0 ran out of memory if `failed`."""
    pods = {}
    for index in (0, 1):
        name = f"{trainjob}-node-0-{index}-x{index}z"
        labels = {
            "jobset.sigs.k8s.io/jobset-name": trainjob,
            "jobset.sigs.k8s.io/replicatedjob-name": "node",
            "batch.kubernetes.io/job-completion-index": str(index),
        }
        exit_code, reason = (137, "OOMKilled") if failed and index == 0 else (0, "Completed")
        terminated = {"exitCode": exit_code, "reason": reason}
        status = {"name": "node", "image": "train", "imageID": "", "ready": False, "restartCount": 0}
        pods[name] = {
            "metadata": {"name": name, "labels": labels, "creationTimestamp": "2026-12-02T10:00:00Z"},
            "status": {
                "phase": "Failed" if exit_code else "Succeeded",
                "containerStatuses": [status | {"state": {"terminated": terminated}}],
            },
        }
    return pods


def finished_by_rank_0(body: dict) -> dict:
    job = Path(body["spec"]["trainer"]["command"][-1])
    adapter = Trained(Job.load(job).output).adapter
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_text("weights")
    return {"type": "Complete", "status": "True"}


def launch(stage, tmp_path, kubernetes, output, base: str | None = None):
    """One training task of a run whose workspace is tmp_path/ws; base: the llm section's (none: a
    local folder, which nothing fetches)."""
    inputs = tmp_path / "inputs"
    inputs.mkdir(exist_ok=True)
    if base is None:
        (tmp_path / "base").mkdir(exist_ok=True)
        base = str(tmp_path / "base")
    llm = json.dumps({"base": base})
    function, names = {
        "align": (align, ("scored", "previous")),
        "rectune": (rectune, ("samples", "greedy", "previous")),
    }[stage]
    job = Job.of(function, {names[0]: str(inputs), **dict.fromkeys(names[1:])}, llm, output)
    api = kubernetes.api()
    run_on_trainjob(job, nodes(), tmp_path / "ws", TaskConfig(), api, "team-a", poll_s=0.05)


def launch_align(tmp_path, kubernetes, output):
    launch("align", tmp_path, kubernetes, output)


def test_the_task_creates_the_trainjob_waits_and_copies_rank_0s_adapter(tmp_path, capsys):
    kubernetes = FakeKubernetes(finished_by_rank_0)
    try:
        launch_align(tmp_path, kubernetes, tmp_path / "aligned")
    finally:
        kubernetes.close()
    assert (Trained(tmp_path / "aligned").adapter / "adapter_model.safetensors").read_text() == "weights"
    assert [m for m, _ in kubernetes.requests].count("POST") == 1
    trainjobs = [path for _, path in kubernetes.requests if "/trainjobs" in path]
    pods = [path for _, path in kubernetes.requests if "/trainjobs" not in path]
    assert trainjobs and all("/namespaces/team-a/trainjobs" in path for path in trainjobs)
    assert pods and all(path.startswith("/api/v1/namespaces/team-a/pods") for path in pods)
    # node 0's log is in the task's own log, each line under its pod's name; node 1's is not
    (job,) = kubernetes.jobs
    out = capsys.readouterr().out
    assert f"[{job}-node-0-0-x0z] rank 0: step 1 loss 0.5\n[{job}-node-0-0-x0z] rank 0: saved the adapter" in out
    assert f"{job}-node-0-1-x1z" not in out


def test_a_failed_trainjob_names_its_pods_and_a_retry_replaces_it(tmp_path):
    outcomes = [{"type": "Failed", "status": "True", "message": "node 0: CUDA out of memory"}]

    def finish(body):
        return outcomes.pop(0) if outcomes else finished_by_rank_0(body)

    kubernetes = FakeKubernetes(finish)
    try:
        with pytest.raises(TrainJobError) as failed:
            launch_align(tmp_path, kubernetes, tmp_path / "aligned")
        assert not (tmp_path / "aligned").exists()
        launch_align(tmp_path, kubernetes, tmp_path / "aligned")  # KFP's retry of the task
    finally:
        kubernetes.close()
    message = str(failed.value)
    assert re.match(
        r"TrainJob team-a/(trackrec-align-\w+) \(align\) ended Failed: node 0: CUDA out of memory; ", message
    )
    job = re.match(r"TrainJob team-a/(\S+)", message).group(1)
    assert f"pods: {job}-node-0-0-x0z Failed (node: OOMKilled, exit 137), {job}-node-0-1-x1z Succeeded" in message
    assert [m for m, _ in kubernetes.requests if m != "GET"] == ["POST", "DELETE", "POST"]
    assert (Trained(tmp_path / "aligned").adapter / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("failing", [POLL_FAILURES - 1, 10**6])
def test_failed_polls_are_asked_again_and_a_wait_that_gives_up_deletes_its_trainjob(tmp_path, failing):
    """An API server that answers 500 for a while (a restart, a leader election) does not fail the
    task; one that keeps failing does, and the TrainJob is deleted rather than left training unseen."""
    kubernetes = None

    def finish(body):
        kubernetes.failing_reads = failing
        return finished_by_rank_0(body)

    kubernetes = FakeKubernetes(finish)
    try:
        if failing < POLL_FAILURES:
            launch_align(tmp_path, kubernetes, tmp_path / "aligned")
            assert (Trained(tmp_path / "aligned").adapter / "adapter_model.safetensors").is_file()
            assert kubernetes.jobs and "DELETE" not in [m for m, _ in kubernetes.requests]
            return
        with pytest.raises(TrainJobError, match=rf"{POLL_FAILURES} polls in a row failed, the last: .*HTTP 500"):
            launch_align(tmp_path, kubernetes, tmp_path / "aligned")
    finally:
        kubernetes.close()
    assert not kubernetes.jobs and [m for m, _ in kubernetes.requests if m != "GET"] == ["POST", "DELETE"]
    assert not (tmp_path / "aligned").exists()


def test_an_api_server_that_goes_silent_fails_the_task_in_one_line_within_its_timeout(tmp_path, monkeypatch):
    """Every Kubernetes call of the task has API_TIMEOUT_S, the creation too: a stalled API server
    fails the task (which KFP retries) instead of holding it."""
    from trackrec.cluster import trainjob as launcher

    monkeypatch.setattr(launcher, "API_TIMEOUT_S", (1, 1))
    kubernetes = FakeKubernetes(finished_by_rank_0)
    kubernetes.silent_s = 5
    started = time.monotonic()
    try:
        with pytest.raises(TrainJobError, match=r"^creating TrainJob team-a/trackrec-align-\w+: .*timed out"):
            launch_align(tmp_path, kubernetes, tmp_path / "aligned")
    finally:
        kubernetes.close()
    assert time.monotonic() - started < 4


def test_the_base_is_fetched_once_per_run_by_the_staging_task_before_any_node_starts(tmp_path, s3):
    """The trainer pods reach no S3 (their egress policy): the run's staging task fetches the base
    onto the run's workspace, where each TrainJob's TRACKREC_CACHE points; the tasks fetch nothing."""
    from components.base_model import stage_base

    s3.create_bucket(Bucket="models")
    for name, text in {"config.json": "{}", "model.safetensors": "weights"}.items():
        s3.put_object(Bucket="models", Key=f"base/{name}", Body=text.encode())
    staged = []

    def finish(body):  # the nodes start: the base must already be where their TRACKREC_CACHE says
        cache = {v["name"]: v["value"] for v in body["spec"]["trainer"]["env"]}["TRACKREC_CACHE"]
        staged.append((Path(cache) / "models" / "s3" / "models" / "base" / "model.safetensors").read_text())
        return finished_by_rank_0(body)

    assert stage_base(json.dumps({"base": "s3://models/base"}), str(tmp_path / "ws")) == str(tmp_path / "ws")
    s3.delete_object(Bucket="models", Key="base/model.safetensors")  # a second fetch would fail
    kubernetes = FakeKubernetes(finish)
    try:
        launch("align", tmp_path, kubernetes, tmp_path / "aligned", base="s3://models/base")
        launch("rectune", tmp_path, kubernetes, tmp_path / "tuned", base="s3://models/base")
    finally:
        kubernetes.close()
    assert staged == ["weights", "weights"]
    assert [p.name for p in run_cache(tmp_path / "ws").joinpath("models", "s3", "models").iterdir()] == ["base"]


def test_a_task_given_the_runs_workspace_reads_the_base_from_the_runs_cache(tmp_path, monkeypatch):
    """A cluster run's GPU tasks (distill's tokenizer read for the teacher's prompts among them)
    read the staged copy; a local run's keep this machine's cache."""
    from trackrec.llm.base_model import cache_root, use_run_cache

    monkeypatch.setenv("TRACKREC_CACHE", "/cache")
    use_run_cache("")  # a local run: no workspace
    assert cache_root() == Path("/cache")
    use_run_cache(str(tmp_path / "ws"))
    assert cache_root() == run_cache(tmp_path / "ws")
