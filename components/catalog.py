"""The stage table: every stage's declaration (`components.stage`), and the KFP components for a set
of images.

`build(images)` makes the components for the images named in one place
(`pipelines.settings.Images`), with the TrainJob passthrough on the training stages that run over
several nodes.
"""

from __future__ import annotations

from collections.abc import Callable

from kfp import dsl

# each module declares its stages as it is imported
from components import base_model, config, data, features, generator, report, shards, validator  # noqa: F401
from components.stage import STAGES

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


__all__ = ["STAGES", "build"]
