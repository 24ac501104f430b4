"""The pipeline's tasks, made from the stage table: `tasks(stage, name, **inputs)` places the
stage's task on its pool, gives a GPU task the run's staged base and a training task its TrainJob
nodes, and fans a sharded stage out over user shards.

A sharded stage runs as a sub-pipeline made from its component's signature: plan the shards, one
task per shard with ParallelFor, gather the shards' outputs (by the stage's declared Output) into
an output of the same name. A sub-pipeline takes its config section as its own input: `kfp.local`
(2.17) replaces a task-output parameter that flows straight into a ParallelFor with the loop item,
and a sub-pipeline's inputs are not task outputs inside it.
"""

import dataclasses
import inspect
import json
from collections.abc import Callable
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset

from components.catalog import STAGES
from pipelines.placement import place
from pipelines.settings import PipelineSettings
from trackrec.cluster.trainjob import Nodes
from trackrec.qualified import qualified

PER_SHARD = ("shard", "shards")  # a sharded stage's parameters: which shard, of how many


class Tasks:
    """Tasks of one pipeline: `ops`, the stage table's components (`components.catalog.build`);
    `shards`, the pipeline's shard count; `base`, what each GPU task takes to read the base (the
    run's staged workspace on a cluster: `stage_base`'s output)."""

    def __init__(self, ops: dict[str, Callable], settings: PipelineSettings, multi_node: bool):
        self.ops, self.settings, self.multi_node = ops, settings, multi_node
        self.shards = None
        self.base: dict = {}
        # built before the pipeline that uses them: KFP builds a sub-pipeline's graph as it is declared
        self.fan_outs = {name: sharded(self, name) for name, stage in STAGES.items() if stage.sharded is not None}
        self.prepare_fan_out = prepare_fan_out(self)

    def __call__(self, stage: str, name: str, after: dsl.PipelineTask | None = None, **inputs) -> dsl.PipelineTask:
        declared = STAGES[stage]
        inputs |= self.base if declared.gpu else {}
        if declared.sharded is not None:
            task = self.fan_outs[stage](shards=self.shards, **inputs)
        else:
            inputs |= trainjob_inputs(self.settings, stage) if self.multi_node and declared.trainjob else {}
            task = place(self.ops[stage](**inputs), stage, self.settings)
        task.set_display_name(name)
        return task if after is None else task.after(after)


def sharded(tasks: Tasks, stage: str) -> dsl.graph_component.GraphComponent:
    """The sub-pipeline `<stage>-shards`: the component's inputs (but which shard) and the shard
    count in; plan, one task per shard, gather; its one output out, under the component's name for it."""
    declared = STAGES[stage]
    output = declared.output
    parameters = [
        p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name, p in inspect.signature(declared.component).parameters.items()
        if name not in (*PER_SHARD, output)
    ]
    shards = inspect.Parameter("shards", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int)
    # parameters with defaults (the workspace) last
    parameters = sorted([*parameters, shards], key=lambda p: p.default is not inspect.Parameter.empty)
    names = [p.name for p in parameters]
    kind = qualified(declared.sharded)
    Outputs = NamedTuple("Outputs", [(output, Dataset)])

    def fan_out(*values):
        inputs = dict(zip(names, values, strict=True))
        count = inputs.pop("shards")
        plan = tasks("plan_shards", "plan shards", shards=count)
        with dsl.ParallelFor(plan.output) as index:  # each shard's task itself, not this fan-out again
            part = place(tasks.ops[stage](shard=index, shards=count, **inputs), stage, tasks.settings)
            part.set_display_name(f"{stage} (one shard)")
        gather = tasks("gather", f"gather {stage}", parts=dsl.Collected(part.outputs[output]), kind=kind)
        return Outputs(gather.outputs["gathered"])

    fan_out.__name__ = fan_out.__qualname__ = f"{stage}_shards"
    fan_out.__doc__ = f"{stage} over user shards, gathered."
    fan_out.__signature__ = inspect.Signature(parameters, return_annotation=Outputs)
    return dsl.pipeline(name=f"{stage}-shards")(fan_out)


def prepare_fan_out(tasks: Tasks) -> dsl.graph_component.GraphComponent:
    """prepare_data over user shards: plan (the whole log's id maps, user ranges of equal events),
    one task per shard, join into the dataset one task would write."""

    @dsl.pipeline(name="prepare-fan-out")
    def prepare(data: str, data_version: str, shards: int) -> Dataset:
        plan = tasks("plan_prepare", "plan data shards", data=data, data_version=data_version, shards=shards)
        with dsl.ParallelFor(plan.outputs["Output"]) as index:
            part = tasks("prepare_shard", "prepare data (one shard)", data=data, plan=plan.outputs["plan"], shard=index)
        joined = tasks(
            "join_prepared", "join data shards", data=data, data_version=data_version, plan=plan.outputs["plan"],
            parts=dsl.Collected(part.outputs["part"]),
        )  # fmt: skip
        return joined.outputs["dataset"]

    return prepare


def trainjob_inputs(settings: PipelineSettings, stage: str) -> dict[str, str]:
    """What a training task needs to launch its TrainJob beside the workspace: the nodes (JSON)."""
    override = settings.stages.get(stage)
    nodes = Nodes(
        nodes=settings.training.nodes,
        runtime=settings.training.runtime,
        image=settings.images.train,
        timeout_s=(override and override.timeout_s) or settings.gpu_pool.timeout_s,
        run_as_user=settings.run_as_user,
        shm=settings.gpu_pool.shm,
    )
    return {"nodes": json.dumps(dataclasses.asdict(nodes))}
