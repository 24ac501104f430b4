"""A training stage as a Kubeflow Trainer TrainJob that the task creates and waits for, when the
settings ask for more than one node (trackrec/cluster/launch.py).

The task copies its inputs into the run's shared workspace (a ReadWriteMany PVC that
KFP mounts in the task and, through the task-config passthrough, in every trainer pod), where the
run's staging task has put the base model (the trainer pods reach no S3), writes the stage's
arguments there, and creates a TrainJob on the cluster's torch runtime. KFP forwards the task's GPU
pool (resources, tolerations, node selector) to the TrainJob instead of the task's own pod, so the
task itself waits on a CPU node. Each trainer node runs `torchrun` (the runtime sets its rank and
peers); DeepSpeed ZeRO-3 (`*_train.deepspeed`) shards across all of them and global rank 0 writes
the adapter into the workspace, which the task copies into its output artifact.
While it waits, the task streams node 0's log into its own (KFP's task log); a failure names the
TrainJob's pods and how each ended.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from trackrec.cluster.job import RANK, Job
from trackrec.errors import TrackRecError
from trackrec.inert import inert
from trackrec.llm.base_model import run_cache

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
MANAGER = "trackrec.io/launcher"  # owner of the TrainJob's runtime patch
NODE_CONTAINER = "node"  # the torch runtime's trainer job and container
TRAINER_LABEL = "trackrec.io/trainjob"  # on every trainer pod: they reach each other and DNS, nothing else
# no Istio sidecar in a profile namespace: it would hold the pods' rendezvous and NCCL ports and keep
# a finished node's pod running
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
# JobSet labels every pod with its JobSet's name, the TrainJob's (kubeflow/trainer v2.3.0
# pkg/runtime/framework/plugins/jobset/jobset.go:413, examples/yaml/01-multi-node.yaml:27); node 0 is
# completion index 0 of the replicated job "node" (manifests/base/runtimes/torch_distributed.yaml:28)
JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"
NODE_0 = f"jobset.sigs.k8s.io/replicatedjob-name={NODE_CONTAINER},batch.kubernetes.io/job-completion-index=0"


# each Kubernetes API call of the wait: (connect, read) seconds; a silent API fails one poll
API_TIMEOUT_S = (10, 60)
# consecutive polls that failed transiently (HTTP 5xx or 429, a timeout, a dropped connection) before
# the wait gives up: an API server restarting or a leader election, about a minute at the 10 s poll
POLL_FAILURES = 6


class TrainJobError(TrackRecError):
    """A TrainJob that could not be created or did not complete."""


class TransientApiError(TrainJobError):
    """An API call that may succeed if asked again."""


class NotFoundError(TrainJobError):
    """The API answered 404: the object is not there."""


@dataclass(frozen=True)
class Nodes:
    """The multi-node settings a training task is compiled with (`PipelineSettings.training`)."""

    nodes: int
    runtime: str
    image: str
    timeout_s: int
    run_as_user: int
    shm: str = "16Gi"  # each node's memory-backed /dev/shm (NCCL, data loaders): the GPU pool's

    @classmethod
    def from_json(cls, text: str) -> Nodes:
        return cls(**json.loads(text))


def job_name(stage: str, output: Path) -> str:
    """One name per task output: a retried task finds the TrainJob it created."""
    return f"trackrec-{stage}-{hashlib.sha256(str(output).encode()).hexdigest()[:12]}"


def stage_job(job: Job, folder: Path) -> Path:
    """The job with its inputs copied into `folder` (in the workspace) and its output there too, as
    the job file the nodes read."""
    return job.moved(folder).save(folder / "job.json")


def trainjob_manifest(
    name: str, namespace: str, stage: str, job: Path, nodes: Nodes, task_config, withheld: tuple[str, ...] = ()
) -> dict:
    """The TrainJob: `nodes.nodes` nodes of the task's GPU pool (KFP's passthrough), the train image,
    the workspace mounted, a memory-backed /dev/shm (KFP's passthrough carries no emptyDir), the
    task's environment but `withheld`, non-root, no Istio sidecar, each node running the job file
    under torchrun."""
    env = [variable for variable in task_config.env or [] if variable.get("name") not in withheld]
    mounts = [m for m in task_config.volume_mounts or [] if m.get("name") != "dshm"]
    container = {"name": NODE_CONTAINER, "volumeMounts": [*mounts, {"name": "dshm", "mountPath": "/dev/shm"}]}
    container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    volumes = [v for v in task_config.volumes or [] if v.get("name") != "dshm"]
    shm = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": nodes.shm}}
    pod = {
        "nodeSelector": task_config.node_selector or {},
        "tolerations": task_config.tolerations or [],
        "volumes": [*volumes, shm],
        "containers": [container],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": nodes.run_as_user,
            "runAsGroup": nodes.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    cache = {"name": "TRACKREC_CACHE", "value": str(run_cache(job.parents[2]))}  # the workspace's staged base
    template = {"metadata": {"labels": {TRAINER_LABEL: "true"} | NO_SIDECAR}, "spec": pod}  # the egress policy's
    patch = {"spec": {"replicatedJobs": [{"name": NODE_CONTAINER, "template": {"spec": {"template": template}}}]}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"trackrec.io/pipeline": "true", "trackrec.io/stage": stage},
        },
        "spec": {
            "runtimeRef": {"name": nodes.runtime},
            "trainer": {
                "image": nodes.image,
                "numNodes": nodes.nodes,
                "resourcesPerNode": task_config.resources or {},
                "env": [*env, cache],
                "command": ["torchrun", *RANK, str(job)],
            },
            "runtimePatches": [{"manager": MANAGER, "trainingRuntimeSpec": {"template": patch}}],
            "activeDeadlineSeconds": nodes.timeout_s,
        },
    }


def _namespace() -> str:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()


def run_on_trainjob(
    job: Job,
    nodes: Nodes,
    workspace: Path,
    task_config,
    api=None,
    namespace: str | None = None,
    poll_s: float = 10.0,
    withheld: tuple[str, ...] = (),
) -> None:
    """Create (or find, on a retry) the TrainJob, wait for it while streaming node 0's log, copy the
    output into the job's. api, namespace: the cluster's (default: this pod's ServiceAccount and namespace)."""
    from kubernetes import client

    if api is None:
        from kubernetes import config

        config.load_incluster_config()
        api = client.CustomObjectsApi()
    core = client.CoreV1Api(api.api_client)
    namespace = namespace or _namespace()
    stage, output = job.stage, Path(job.output)
    name = job_name(stage, output)
    folder = workspace / "trainjobs" / name
    existing = _get(api, namespace, name)
    if existing is not None and (_finished(existing) or "").startswith("Failed"):
        _delete(api, namespace, name)
        _wait_gone(api, namespace, name, poll_s)
        existing = None
    if existing is None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        body = trainjob_manifest(name, namespace, stage, stage_job(job, folder), nodes, task_config, withheld)
        _api(
            f"creating TrainJob {namespace}/{name}",
            api.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            body,
        )
    stop = threading.Event()
    follower = threading.Thread(target=follow_node_0, args=(core, namespace, name, stop, poll_s), daemon=True)
    follower.start()
    try:
        state = wait_for(lambda: _get(api, namespace, name), nodes.timeout_s, f"TrainJob {namespace}/{name}", poll_s)
    except TrainJobError:
        _delete_unwatched(api, namespace, name)
        raise
    finally:
        stop.set()
        follower.join(timeout=60)  # node 0's last lines, before the task's own
    if state != "Complete":
        raise TrainJobError(f"TrainJob {namespace}/{name} ({stage}) ended {state}; {pod_states(core, namespace, name)}")
    shutil.copytree(folder / "output", output, dirs_exist_ok=True)


def follow_node_0(core, namespace: str, name: str, stop: threading.Event, every_s: float) -> None:
    """Print node 0's log (each line prefixed with its pod's name) into this task's log until `stop`,
    then one last pass; a pod JobSet recreated (a restart) is followed too. Never raises: a log it
    cannot read is one line, and the wait goes on."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    followed: set[str] = set()
    try:
        while True:
            last = stop.is_set()
            selector = f"{JOBSET_LABEL}={name},{NODE_0}"
            pods = core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=API_TIMEOUT_S).items
            for pod in sorted(pods, key=lambda p: (str(p.metadata.creation_timestamp), p.metadata.name)):
                if pod.metadata.name in followed or pod.status.phase not in ("Running", "Succeeded", "Failed"):
                    continue
                followed.add(pod.metadata.name)
                log = core.read_namespaced_pod_log(  # no read timeout: a node may print nothing for long
                    pod.metadata.name,
                    namespace,
                    container=NODE_CONTAINER,
                    follow=True,
                    _preload_content=False,
                    _request_timeout=(API_TIMEOUT_S[0], None),
                )
                try:
                    for line in log:
                        print(f"[{pod.metadata.name}] {line.decode(errors='replace').rstrip()}", flush=True)
                finally:
                    log.release_conn()
            if last:
                return
            stop.wait(every_s)
    except (ApiException, HTTPError, OSError) as error:
        reason = f"HTTP {error.status} {error.reason}" if isinstance(error, ApiException) else str(error)
        print(f"cannot stream node 0's log of TrainJob {namespace}/{name}: {reason}", flush=True)


def pod_states(core, namespace: str, name: str) -> str:
    """The TrainJob's pods and how each ended, for its error: 'pods: <name> Failed (node: Error, exit 1), ...'."""
    try:
        pods = _api(
            "listing its pods", core.list_namespaced_pod, namespace, label_selector=f"{JOBSET_LABEL}={name}"
        ).items
    except TrainJobError as error:
        return f"{error}: kubectl -n {namespace} get pods -l {JOBSET_LABEL}={name}"
    if not pods:
        return "it left no pods"
    states = []
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        ended = [
            f"{c.name}: {c.state.terminated.reason}, exit {c.state.terminated.exit_code}"
            for c in pod.status.container_statuses or []
            if c.state and c.state.terminated and c.state.terminated.exit_code
        ]
        states.append(f"{pod.metadata.name} {pod.status.phase}" + (f" ({'; '.join(ended)})" if ended else ""))
    return f"pods: {', '.join(states)} (node 0's log is above; kubectl -n {namespace} logs <pod> -c {NODE_CONTAINER})"


def _api(what: str, call, *args, **kwargs):
    """`call(*args, **kwargs)` on the Kubernetes API within API_TIMEOUT_S; a failure as one line
    naming `what`: NotFoundError (404), TransientApiError (5xx, 429, a timeout, a refused or dropped
    connection: may succeed if asked again) or TrainJobError."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call(*args, **kwargs, _request_timeout=API_TIMEOUT_S)
    except ApiException as error:
        if error.status == 404:
            failed = NotFoundError
        elif error.status >= 500 or error.status == 429:
            failed = TransientApiError
        else:
            failed = TrainJobError
        raise failed(f"{what}: HTTP {error.status} {error.reason}") from error
    except (HTTPError, OSError) as error:
        raise TransientApiError(f"{what}: {inert(error, 300)}") from error


def _get(api, namespace: str, name: str) -> dict | None:
    try:
        return _api(
            f"cannot read TrainJob {namespace}/{name}",
            api.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
        )
    except NotFoundError:
        return None


def _delete(api, namespace: str, name: str) -> None:
    _api(
        f"deleting TrainJob {namespace}/{name}",
        api.delete_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
    )


def _delete_unwatched(api, namespace: str, name: str) -> None:
    """After a wait that gave up: the TrainJob is deleted, so its nodes do not train on with nobody to
    take the result (a retry of the task starts it afresh); a delete that fails is said, not raised."""
    try:
        _delete(api, namespace, name)
        print(f"deleted TrainJob {namespace}/{name}: the task stopped waiting for it", flush=True)
    except NotFoundError:
        pass
    except TrainJobError as error:
        print(f"could not delete it ({error}): delete it by hand", flush=True)


def _finished(job: dict) -> str | None:
    """'Complete' or 'Failed' once the TrainJob ended (its status conditions), else None."""
    for condition in (job or {}).get("status", {}).get("conditions", []):
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            message = condition.get("message")
            return condition["type"] if condition["type"] == "Complete" or not message else f"Failed: {message}"
    return None


def wait_for(read, timeout_s: float, what: str, every_s: float = 10.0) -> str:
    """Poll `read()` (the TrainJob, or None once gone) until it has ended; its final state. A poll
    that fails transiently is asked again, up to POLL_FAILURES in a row."""
    deadline = time.monotonic() + timeout_s
    failures = 0
    while time.monotonic() < deadline:
        try:
            job = read()
        except TransientApiError as error:
            failures += 1
            if failures >= POLL_FAILURES:
                raise TrainJobError(f"{what}: {failures} polls in a row failed, the last: {error}") from error
            time.sleep(every_s)
            continue
        failures = 0
        if job is None:
            raise TrainJobError(f"{what} disappeared while the task waited for it")
        state = _finished(job)
        if state is not None:
            return state
        time.sleep(every_s)
    raise TrainJobError(f"{what} did not finish within {timeout_s} s")


def _wait_gone(api, namespace: str, name: str, every_s: float, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while _get(api, namespace, name) is not None:
        if time.monotonic() > deadline:
            raise TrainJobError(f"TrainJob {namespace}/{name} was not deleted within {timeout_s} s")
        time.sleep(every_s)
