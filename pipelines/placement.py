"""Apply the settings to one task: pool, resources, accelerator, /dev/shm, scratch disk, timeout,
identity, retries, S3 access.

KFP's spec has no per-task ServiceAccount (a run's pods all run as the run's: `submit` and
`schedule` set the settings' one) and no ephemeral-storage resource: the scratch disk at /cache is
a generic ephemeral volume (a PVC sized by the pool) on GPU stages (which read the base model from
the run's workspace instead: `trackrec_pipeline`), and a size-limited emptyDir on CPU stages; the
chart's LimitRange gives every container of the run's namespace ephemeral-storage requests and
limits.
"""

from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

from components.catalog import STAGES
from pipelines.settings import PipelineSettings, Pool, StageOverride
from trackrec import reach
from trackrec.llm.distributed import GPUS_ENV

TEACHER_KEY = "api-key"  # the key of a teacher's Secret
CACHE = "/cache"  # the images' TRACKREC_CACHE: the base model, the encoder, the teacher's answers


def place(task: PipelineTask, stage: str, settings: PipelineSettings) -> PipelineTask:
    gpu = STAGES[stage].gpu
    pool: Pool = settings.gpu_pool if gpu else settings.cpu_pool
    override = settings.stages.get(stage, StageOverride())
    cpu, memory = override.cpu or pool.cpu, override.memory or pool.memory
    task.set_cpu_request(cpu).set_cpu_limit(cpu).set_memory_request(memory).set_memory_limit(memory)
    for key, value in pool.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in pool.tolerations:
        kubernetes.add_toleration(
            task, key=toleration.key, operator=toleration.operator, value=toleration.value, effect=toleration.effect
        )
    kubernetes.set_timeout(task, override.timeout_s or pool.timeout_s)
    kubernetes.add_pod_label(task, label_key="trackrec.io/pipeline", label_value="true")  # the egress policy's
    # uid and gid; KFP's backend adds no-privilege-escalation, all capabilities dropped, seccomp RuntimeDefault
    uid = settings.run_as_user
    kubernetes.set_security_context(task, run_as_user=uid, run_as_group=uid, run_as_non_root=True)
    # every task moves its artifacts through S3; a restarting S3, Redis or teacher is waited out
    task.set_retry(settings.retries, backoff_duration="60s", backoff_factor=2, backoff_max_duration="3600s")
    if gpu:
        kubernetes.add_ephemeral_volume(
            task, volume_name="cache", mount_path=CACHE, access_modes=["ReadWriteOnce"], size=pool.scratch
        )
    else:
        kubernetes.empty_dir_mount(task, volume_name="cache", mount_path=CACHE, size_limit=pool.scratch)
    if gpu:
        gpus = override.gpus or settings.gpu_pool.gpus
        task.set_accelerator_type(settings.gpu_pool.accelerator).set_accelerator_limit(gpus)
        task.set_env_variable(GPUS_ENV, str(gpus))  # what DeepSpeed and vLLM spread over
        kubernetes.empty_dir_mount(
            task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=settings.gpu_pool.shm
        )
    s3 = settings.s3
    if s3.use_secret:
        kubernetes.use_secret_as_env(
            task,
            secret_name=s3.secret,
            secret_key_to_env={
                s3.access_key_id_key: "AWS_ACCESS_KEY_ID",
                s3.secret_access_key_key: "AWS_SECRET_ACCESS_KEY",
            },
        )
    if s3.endpoint:
        task.set_env_variable("AWS_ENDPOINT_URL", s3.endpoint)
    declared = STAGES[stage]
    if declared.reach and settings.reach is not None:  # it checks the run config against the deployment's reach
        task.set_env_variable(reach.ENV, reach.to_env(settings.reach))
    if declared.teacher and settings.reach is not None:  # it asks the teacher
        for teacher in settings.reach.teachers:
            if teacher.secret:
                kubernetes.use_secret_as_env(
                    task, secret_name=teacher.secret, secret_key_to_env={TEACHER_KEY: teacher.api_key_env}
                )
    if declared.store:  # it opens the feature store: Redis's NetworkPolicy lets this label in
        kubernetes.add_pod_label(task, label_key="trackrec.io/redis-client", label_value="true")
        if settings.redis.secret:
            kubernetes.use_secret_as_env(
                task, secret_name=settings.redis.secret, secret_key_to_env={settings.redis.key: "REDIS_PASSWORD"}
            )
    return task
