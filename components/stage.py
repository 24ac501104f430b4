"""A stage's one declaration: `@stage(...)` over the component that wraps its trackrec.stages
function says what the pipeline's tasks, the placement, the sharding, the TrainJob compile and the
settings' checks need, and puts it in the stage table (`STAGES`).

KFP ships a component's source (without its decorators) in the pipeline YAML and runs it in its
image, so each wrapper imports what it needs inside its body.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from kfp.dsl.types.type_annotations import is_artifact_wrapped_in_Output


@dataclass(frozen=True)
class Stage:
    """What a stage is, in one place."""

    component: Callable  # the wrapper over its trackrec.stages function
    image: str  # which of the settings' images runs it: train, infer or cpu
    gpu: bool = False  # on the GPU pool (else the CPU pool)
    sharded: type | None = None  # fans out over user shards; gather assembles this Output of each shard
    trainjob: bool = False  # may run as a Kubeflow Trainer TrainJob over several nodes
    store: bool = False  # opens the feature store (Redis: its NetworkPolicy label and password)
    reach: bool = False  # checks the run config against what the deployment lets a run reach
    teacher: bool = False  # asks the teacher: the teachers' API keys in its environment

    @property
    def name(self) -> str:
        return self.component.__name__

    @property
    def output(self) -> str:
        """The name of its one output artifact (what a sharded stage's gather collects)."""
        parameters = inspect.signature(self.component).parameters.items()
        outputs = [name for name, parameter in parameters if is_artifact_wrapped_in_Output(parameter.annotation)]
        if len(outputs) != 1:
            raise ValueError(f"stage {self.name}: a sharded stage writes one output artifact, found {outputs}")
        return outputs[0]


STAGES: dict[str, Stage] = {}  # stage name -> its declaration, in the order they were declared


def stage(image: str, **what) -> Callable[[Callable], Callable]:
    """Declare the decorated component a stage (`Stage`'s fields beside `image`) under its function's
    name; the component itself is returned unchanged."""

    def declare(component: Callable) -> Callable:
        declared = Stage(component, image, **what)
        if declared.name in STAGES and STAGES[declared.name].component is not component:
            raise ValueError(f"stage {declared.name!r} is declared twice")
        if declared.sharded is not None:
            declared.output  # noqa: B018 - fails here, at the declaration, for a stage of several outputs
        STAGES[declared.name] = declared
        return component

    return declare
