"""How the pipeline's pods are placed on a cluster: one settings object, loaded from YAML.

The Helm chart renders this file from its values; `trackrec compile --settings` reads it.
Nothing here is a secret: S3 credentials are named by Secret and key, never by value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.catalog import STAGES
from trackrec.config import Config, field
from trackrec.reach import Reach, Teacher


@dataclass
class Images(Config):
    """The images the components run in; each tag pinned (images/ builds them)."""

    train: str = field("ghcr.io/trackrec/train:0.1.0", help="CUDA, torch, trl, peft, deepspeed, trackrec")
    infer: str = field("ghcr.io/trackrec/infer:0.1.0", help="vLLM's image with trackrec")
    cpu: str = field("ghcr.io/trackrec/cpu:0.1.0", help="trackrec with feast, the encoder and the CTR models")


@dataclass
class Toleration(Config):
    key: str = field("nvidia.com/gpu", help="taint key")
    operator: Literal["Exists", "Equal"] = field("Exists", help="Exists or Equal")
    value: str | None = field(None, help="taint value (operator Equal)")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = field("NoSchedule", help="taint effect")


@dataclass
class Pool(Config):
    node_selector: dict[str, str] = field(factory=dict, help="node labels a pod of this pool requires")
    tolerations: tuple[Toleration, ...] = field((), help="taints of the pool's nodes that its pods tolerate")
    cpu: str = field("2", help="CPU request and limit of each pod")
    memory: str = field("8Gi", help="memory request and limit of each pod")
    scratch: str = field("20Gi", help="disk at /cache (base model, caches): its size request and limit")
    timeout_s: int = field(3600, help="a pod running longer is stopped")

    def problems(self) -> list[str]:
        return self.at_least(1, "timeout_s")


@dataclass
class GPUPool(Pool):
    """A pool whose every default is the GPU pool's own: a settings file naming only some fields
    (`gpu_pool: {gpus: 8}`) keeps the rest, tolerations and node selector included."""

    node_selector: dict[str, str] = field(
        factory=lambda: {"trackrec.io/pool": "gpu"}, help="node labels a pod of this pool requires"
    )
    tolerations: tuple[Toleration, ...] = field(
        (Toleration(),), help="taints of the pool's nodes that its pods tolerate (default: nvidia.com/gpu)"
    )
    cpu: str = field("8", help="CPU request and limit of each pod")
    memory: str = field("64Gi", help="memory request and limit of each pod")
    scratch: str = field("200Gi", help="disk at /cache (engine caches; the base is on the run's workspace): its size")
    timeout_s: int = field(6 * 3600, help="a pod running longer is stopped")
    accelerator: str = field("nvidia.com/gpu", help="the accelerator resource name")
    gpus: int = field(1, help="GPUs per pod; DeepSpeed and vLLM use them all")
    shm: str = field("16Gi", help="size of the in-memory /dev/shm volume (NCCL, data loaders)")

    def problems(self) -> list[str]:
        return super().problems() + self.at_least(1, "gpus")


@dataclass
class StageOverride(Config):
    """A stage's own numbers, where the pool's do not fit it."""

    gpus: int | None = field(None, help="GPUs for this stage (GPU stages only)")
    cpu: str | None = field(None, help="CPU request and limit")
    memory: str | None = field(None, help="memory request and limit")
    timeout_s: int | None = field(None, help="timeout of this stage's pods")


@dataclass
class S3Access(Config):
    secret: str = field("trackrec-s3", help="Kubernetes Secret holding the S3 credentials")
    access_key_id_key: str = field("AWS_ACCESS_KEY_ID", help="its key for the access key id")
    secret_access_key_key: str = field("AWS_SECRET_ACCESS_KEY", help="its key for the secret access key")
    endpoint: str | None = field(None, help="S3 endpoint URL (none: AWS)")
    use_secret: bool = field(True, help="false: workload identity (IRSA and the like) gives the pods their access")


@dataclass
class RedisAccess(Config):
    secret: str | None = field("trackrec-redis", help="Secret with the Redis password (none: no password)")
    key: str = field("password", help="its key; the publish stage reads it as REDIS_PASSWORD")


def _default_reach() -> Reach:
    """The default deployment's: the chart's Redis and bucket, the teacher of configs/cluster.yaml."""
    return Reach(
        redis=("redis.trackrec.svc:6379",),
        buckets=("trackrec",),
        teachers=(Teacher("http://teacher.trackrec.svc:8000/v1", "TRACKREC_TEACHER_API_KEY", "trackrec-teacher"),),
    )


@dataclass
class Training(Config):
    """Multi-node training: distill's SFT, align and rectune as a Kubeflow Trainer TrainJob (docs/deploy.md says
    what the cluster needs: Kubeflow Trainer v2, a torch runtime, an RWX storage class); and the run's
    workspace, which every cluster run gets (the staged base model)."""

    nodes: int = field(1, help="GPU nodes for distill, align and rectune; 1: in the task's pod; > 1: a TrainJob")
    runtime: str = field("torch-distributed", help="the ClusterTrainingRuntime the TrainJob uses")
    workspace: str = field(
        "500Gi",
        help="size of every run's shared workspace (the base model for every GPU task; TrainJob inputs, adapter)",
    )
    storage_class: str | None = field(
        None, help="a ReadWriteMany storage class for it (any nodes); none: the cluster's default"
    )

    def problems(self) -> list[str]:
        return self.at_least(1, "nodes")


@dataclass
class PipelineSettings(Config):
    pipeline_root: str = field("s3://trackrec/pipeline-root", help="where KFP keeps the runs' artifacts")
    images: Images = field(factory=Images, help="component images")
    gpu_pool: GPUPool = field(factory=GPUPool, help="where the GPU stages run")
    training: Training = field(factory=Training, help="distill, align and rectune on one node or several")
    cpu_pool: Pool = field(factory=Pool, help="where the CPU stages run (never on the GPU pool's taints)")
    prepare_shards: int = field(
        1,
        help="prepare_data fanned out over this many user shards, for a parquet log larger than one CPU pod "
        "(docs/data.md); 1: one task",
    )
    stages: dict[str, StageOverride] = field(factory=dict, help=f"per-stage overrides; stages: {list(STAGES)}")
    s3: S3Access = field(factory=S3Access, help="how the pods reach S3")
    redis: RedisAccess = field(factory=RedisAccess, help="how the publish stage authenticates to Redis")
    service_account: str = field(
        "trackrec-pipeline-runner", help="the ServiceAccount every pod of a run runs as (the chart's, least privilege)"
    )
    run_as_user: int = field(10001, help="the non-root uid (and gid) of every task's container; the images' USER")
    retries: int = field(2, help="retries, with backoff, of the tasks that reach S3, Redis or the teacher")
    reach: Reach | None = field(
        factory=_default_reach, help="what a run may reach (hosts, buckets, the teacher); none: unchecked (a local run)"
    )

    def problems(self) -> list[str]:
        problems = self.at_least(1, "run_as_user", "prepare_shards") + self.at_least(0, "retries")
        problems += [
            f"stages.{name}: unknown stage (known: {list(STAGES)})" for name in self.stages if name not in STAGES
        ]
        problems += [
            f"stages.{name}.gpus: {name} is a CPU stage"
            for name, override in self.stages.items()
            if name in STAGES and not STAGES[name].gpu and override.gpus is not None
        ]
        return problems
