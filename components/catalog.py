"""The stage table: what each stage is (its component, image, pool, sharding, TrainJob), in one place.

KFP ships a component's source in the pipeline YAML and runs it in its image, so each wrapper
imports what it needs inside its body. `build(images)` makes the components for a set of images
(named in one place: `pipelines.settings.Images`), with the TrainJob passthrough on the training
stages that run over several nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kfp import dsl

from components.base_model import stage_base
from components.config import split_config
from components.data import data_version, join_prepared, plan_prepare, prepare_data, prepare_shard, select_samples
from components.features import ctr_judge, current_generator, encode, publish, train_ctr
from components.generator import align, distill, greedy, sample, summarize
from components.report import report
from components.shards import gather, plan_shards
from components.validator import evaluate, rectune, score


@dataclass(frozen=True)
class Stage:
    """What a stage is, in one place; the pipeline, the placement, the sharding and the settings'
    checks read it."""

    component: Callable  # the wrapper over its trackrec.stages function
    image: str  # which of the settings' images runs it: train, infer or cpu
    gpu: bool = False  # on the GPU pool (else the CPU pool)
    sharded: str | None = None  # fans out over user shards; the output gather collects
    trainjob: bool = False  # may run as a Kubeflow Trainer TrainJob over several nodes
    store: bool = False  # opens the feature store (Redis: its NetworkPolicy label and password)


STAGES: dict[str, Stage] = {
    "split_config": Stage(split_config, "cpu"),
    "plan_shards": Stage(plan_shards, "cpu"),
    "gather": Stage(gather, "cpu"),
    "data_version": Stage(data_version, "cpu"),
    "prepare_data": Stage(prepare_data, "cpu"),
    "plan_prepare": Stage(plan_prepare, "cpu"),
    "prepare_shard": Stage(prepare_shard, "cpu"),
    "join_prepared": Stage(join_prepared, "cpu"),
    "select_samples": Stage(select_samples, "cpu"),
    "stage_base": Stage(stage_base, "cpu"),  # a cluster run's one fetch of the base, onto its workspace
    "distill": Stage(distill, "train", gpu=True, trainjob=True),
    "sample": Stage(sample, "infer", gpu=True, sharded="sampled"),
    "score": Stage(score, "infer", gpu=True, sharded="scored"),
    "align": Stage(align, "train", gpu=True, trainjob=True),
    "greedy": Stage(greedy, "infer", gpu=True, sharded="reccots"),
    "rectune": Stage(rectune, "train", gpu=True, trainjob=True),
    "ctr_judge": Stage(ctr_judge, "cpu"),
    "evaluate": Stage(evaluate, "infer", gpu=True),
    "summarize": Stage(summarize, "infer", gpu=True, sharded="reccots"),
    "encode": Stage(encode, "cpu", sharded="embeddings"),
    "train_ctr": Stage(train_ctr, "cpu"),
    "publish": Stage(publish, "cpu", store=True),
    "current_generator": Stage(current_generator, "cpu", store=True),
    "report": Stage(report, "cpu"),  # the run's page and card, after the final CTR model and publish
}


# A training task that launches a TrainJob hands it the task's GPU pool (resources, tolerations,
# node selector: then not applied to the task's own pod, which only waits) and shares its
# environment and volumes (the run's workspace among them) with it.
TRAINJOB_PASSTHROUGHS = [
    dsl.TaskConfigField.RESOURCES,
    dsl.TaskConfigField.KUBERNETES_TOLERATIONS,
    dsl.TaskConfigField.KUBERNETES_NODE_SELECTOR,
    dsl.TaskConfigPassthrough(field=dsl.TaskConfigField.ENV, apply_to_task=True),
    dsl.TaskConfigPassthrough(field=dsl.TaskConfigField.KUBERNETES_VOLUMES, apply_to_task=True),
]


def build(images, multi_node: bool = False) -> dict[str, Callable]:
    """stage -> KFP component running in its image; the images' own packages include kfp.
    multi_node: the TrainJob stages are compiled to launch a TrainJob."""
    return {
        name: dsl.component(
            stage.component,
            base_image=getattr(images, stage.image),
            install_kfp_package=False,
            task_config_passthroughs=TRAINJOB_PASSTHROUGHS if multi_node and stage.trainjob else None,
        )
        for name, stage in STAGES.items()
    }
