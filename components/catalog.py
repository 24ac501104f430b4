"""The stage catalog: each stage's component and the image that runs it.

KFP ships a component's source in the pipeline YAML and runs it in its image, so each wrapper
imports what it needs inside its body. `build(images)` makes the components for a set of images
(named in one place: `pipelines.settings.Images`), with the TrainJob passthrough on the training
stages that run over several nodes.
"""

from __future__ import annotations

from collections.abc import Callable

from kfp import dsl

from components.config import split_config
from components.data import data_version, prepare_data, select_samples
from components.features import encode, publish, train_ctr
from components.generator import align, distill, greedy, sample, summarize
from components.shards import gather, plan_shards
from components.validator import evaluate, rectune, score

# stage -> (wrapper, which image runs it)
CATALOG: dict[str, tuple[Callable, str]] = {
    "split_config": (split_config, "cpu"),
    "plan_shards": (plan_shards, "cpu"),
    "gather": (gather, "cpu"),
    "data_version": (data_version, "cpu"),
    "prepare_data": (prepare_data, "cpu"),
    "select_samples": (select_samples, "cpu"),
    "distill": (distill, "train"),
    "sample": (sample, "infer"),
    "score": (score, "infer"),
    "align": (align, "train"),
    "greedy": (greedy, "infer"),
    "rectune": (rectune, "train"),
    "evaluate": (evaluate, "infer"),
    "summarize": (summarize, "infer"),
    "encode": (encode, "cpu"),
    "train_ctr": (train_ctr, "cpu"),
    "publish": (publish, "cpu"),
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


def build(images, trainjob_stages: tuple[str, ...] = ()) -> dict[str, Callable]:
    """stage -> KFP component running in its image; the images' own packages include kfp.
    trainjob_stages: the training stages compiled to launch a TrainJob (multi-node settings)."""
    return {
        name: dsl.component(
            function,
            base_image=getattr(images, image),
            install_kfp_package=False,
            task_config_passthroughs=TRAINJOB_PASSTHROUGHS if name in trainjob_stages else None,
        )
        for name, (function, image) in CATALOG.items()
    }
