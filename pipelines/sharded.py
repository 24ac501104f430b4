"""The sharded inference stages as sub-pipelines: plan the shards, one task per shard with
ParallelFor, gather. A GPU stage's sub-pipeline takes the run's workspace too (empty: a local run),
where each shard reads the staged base. A sub-pipeline takes its config section as its own input:
`kfp.local` (2.17) replaces a task-output parameter that flows straight into a ParallelFor with the
loop item, and a sub-pipeline's inputs are not task outputs inside it.
"""

from collections.abc import Callable

from kfp import dsl
from kfp.dsl import Dataset, Input, Model

from components.catalog import STAGES


def sharded_stages(task: Callable[..., dsl.PipelineTask]) -> dict[str, dsl.graph_component.GraphComponent]:
    """stage -> sub-pipeline running it over `shards` user shards; `task(stage, name, **inputs)`
    makes a placed task."""

    def fan_out(stage: str, shards, **inputs):
        plan = task("plan_shards", "plan shards", shards=shards)
        with dsl.ParallelFor(plan.output) as index:
            part = task(stage, f"{stage} (one shard)", shard=index, shards=shards, **inputs)
        collected = dsl.Collected(part.outputs[STAGES[stage].sharded])
        return task("gather", f"gather {stage}", parts=collected).outputs["gathered"]

    @dsl.pipeline(name="sample-shards")
    def sample(
        samples: Input[Dataset], generator: Input[Model], llm: str, iteration: int, shards: int, workspace: str = ""
    ) -> Dataset:
        return fan_out(
            "sample", shards, samples=samples, generator=generator, llm=llm, iteration=iteration, workspace=workspace
        )

    @dsl.pipeline(name="score-shards")
    def score(
        samples: Input[Dataset],
        sampled: Input[Dataset],
        validator: Input[Model],
        judge: Input[Model],
        dataset: Input[Dataset],
        llm: str,
        shards: int,
        workspace: str = "",
    ) -> Dataset:
        return fan_out(
            "score", shards, samples=samples, sampled=sampled, validator=validator, judge=judge, dataset=dataset,
            llm=llm, workspace=workspace,
        )  # fmt: skip

    @dsl.pipeline(name="greedy-shards")
    def greedy(samples: Input[Dataset], generator: Input[Model], llm: str, shards: int, workspace: str = "") -> Dataset:
        return fan_out("greedy", shards, samples=samples, generator=generator, llm=llm, workspace=workspace)

    @dsl.pipeline(name="summarize-shards")
    def summarize(
        dataset: Input[Dataset],
        generator: Input[Model],
        llm: str,
        users: str,
        active_within_days: int,
        shards: int,
        workspace: str = "",
    ) -> Dataset:
        return fan_out(
            "summarize", shards, dataset=dataset, generator=generator, llm=llm, users=users,
            active_within_days=active_within_days, workspace=workspace,
        )  # fmt: skip

    @dsl.pipeline(name="encode-shards")
    def encode(reccots: Input[Dataset], encoder: str, shards: int) -> Dataset:
        return fan_out("encode", shards, reccots=reccots, encoder=encoder)

    return {"sample": sample, "score": score, "greedy": greedy, "summarize": summarize, "encode": encode}


def prepare_fan_out(task: Callable[..., dsl.PipelineTask]) -> dsl.graph_component.GraphComponent:
    """prepare_data over user shards: plan (the whole log's id maps, user ranges of equal events),
    one task per shard, join into the dataset one task would write."""

    @dsl.pipeline(name="prepare-fan-out")
    def prepare(data: str, data_version: str, shards: int) -> Dataset:
        plan = task("plan_prepare", "plan data shards", data=data, data_version=data_version, shards=shards)
        with dsl.ParallelFor(plan.outputs["Output"]) as index:
            part = task("prepare_shard", "prepare data (one shard)", data=data, plan=plan.outputs["plan"], shard=index)
        parts = dsl.Collected(part.outputs["part"])
        joined = task(
            "join_prepared",
            "join data shards",
            data=data,
            data_version=data_version,
            plan=plan.outputs["plan"],
            parts=parts,
        )
        return joined.outputs["dataset"]

    return prepare
