"""Algorithm 2 as a KFP v2 pipeline: distill once, T alternating iterations unrolled in Python
(KFP v2 has no loops), then the RecCoT features -> Feast -> the CTR model.

The inference stages (sample, score, greedy, summarize) and encode fan out over user shards with
ParallelFor and are gathered into one folder; prepare_data does too where the settings ask
(`prepare_shards`: a log larger than one pod). The same pipeline runs on a cluster and, through
`kfp.local`, on one machine (`trackrec run`). On a cluster, one CPU task stages the base model on
the run's workspace and every GPU task reads it there: one fetch from S3 per run, not one per pod
(docs/deploy.md).
"""

import dataclasses
import json
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model

from components.catalog import STAGES, build
from pipelines.placement import place
from pipelines.settings import PipelineSettings
from pipelines.sharded import prepare_fan_out, sharded_stages
from trackrec.stages.launch import Nodes

NAME = "trackrec"
REFRESH = "trackrec-refresh"
REFRESH_DESCRIPTION = "The daily refresh: active users' RecCoT snapshots as of now, by the arm's G, into Feast."


def build_pipeline(
    iterations: int | None,
    features: bool,
    settings: PipelineSettings,
    default_config: str = "{}",
    refresh: bool = False,
    cluster: bool = True,
) -> dsl.graph_component.GraphComponent:
    """The pipeline for a run config of this shape: T iterations (None: no LLM loop, data and CTR
    only) and with or without the feature stages (which need the loop). refresh: the daily refresh
    instead (no training: the active users' snapshots as of now, written by the G of the version the
    arm reads, published with every older snapshot carried). cluster: the run gets a workspace and
    one task stages the base there for every GPU task (false: `kfp.local`, whose tasks share this
    machine's cache already)."""
    if features and not iterations:
        raise ValueError("the feature stages need the LLM loop (iterations >= 1)")
    if refresh and not features:
        raise ValueError("the refresh pipeline needs the feature stages")
    multi_node = settings.training.nodes > 1
    staged_base = cluster and bool(iterations)
    ops = build(settings.images, multi_node)

    def task(stage: str, name: str, **inputs) -> dsl.PipelineTask:
        inputs |= trainjob_inputs(settings, stage) if multi_node and STAGES[stage].trainjob else {}
        return place(ops[stage](**inputs).set_display_name(name), stage, settings)

    shards_of = sharded_stages(task)
    prepare_in_shards = prepare_fan_out(task)

    def body(config, shards, active_within_days):
        sections = task("split_config", "check config", config=config, iterations=iterations or 0, features=features)
        data, llm = sections.outputs["data"], sections.outputs["llm"]
        base = {}  # what each GPU task takes to read the base: the staged workspace on a cluster
        if staged_base:
            staging = task("stage_base", "stage the base model", llm=llm, workspace=dsl.WORKSPACE_PATH_PLACEHOLDER)
            base = {"workspace": staging.set_caching_options(False).output}  # each run's workspace is new

        def gpu_task(stage: str, name: str, **inputs) -> dsl.PipelineTask:
            return task(stage, name, **inputs, **base)

        version = task("data_version", "identify data", data=data).set_caching_options(False)  # the log may grow
        if settings.prepare_shards > 1:
            dataset = prepare_in_shards(data=data, data_version=version.output, shards=settings.prepare_shards)
            dataset = dataset.set_display_name("prepare data").output
        else:
            dataset = task("prepare_data", "prepare data", data=data, data_version=version.output).outputs["dataset"]

        def sharded(stage: str, name: str, after: dsl.PipelineTask | None = None, **inputs):
            inputs |= base if STAGES[stage].gpu else {}
            fan_out = shards_of[stage](shards=shards, **inputs).set_display_name(name)
            return (fan_out if after is None else fan_out.after(after)).output

        def publish_features(g, after: dsl.PipelineTask | None):
            """summarize -> encode -> publish; a retrain's version keeps `g`, the G that wrote it; a
            refresh's names the G of the version it carries from (current_generator's `g`)."""
            reccots = sharded(
                "summarize", "summarize users", after=after, dataset=dataset, generator=g, llm=llm,
                users=sections.outputs["users"], active_within_days=active_within_days,
            )  # fmt: skip
            embeddings = sharded("encode", "encode", reccots=reccots, encoder=sections.outputs["encoder"])
            published = task(
                "publish", "publish to Feast", embeddings=embeddings, features=sections.outputs["features"],
                active_within_days=active_within_days, data_version=version.output,
                **{"refreshed_from" if refresh else "generator": g},
            )  # fmt: skip
            published.set_caching_options(False)  # it checks the store itself: cheap, and the store may change
            return embeddings, published.outputs["summary"]

        if refresh:
            g = task("current_generator", "G of the arm's version", features=sections.outputs["features"])
            _, summary = publish_features(g.set_caching_options(False).outputs["generator"], None)
            return Outputs(dataset=dataset, published=summary)
        embeddings = summary = None
        if iterations:
            samples = task("select_samples", "select samples", dataset=dataset, llm=llm).outputs["samples"]
            g = g0 = gpu_task("distill", "distill G0", samples=samples, llm=llm).outputs["generator"]
            v = v0 = judge = report = scored = evaluation = None
            for t in range(iterations + 1):
                if t > 0:
                    # after evaluate(t-1): the report grows while the loop runs (kfp.local would
                    # otherwise leave every evaluate task to the end)
                    sampled = sharded(
                        "sample", f"sample {t}", after=evaluation, samples=samples, generator=g, llm=llm, iteration=t
                    )
                    scored = sharded(
                        "score", f"score {t}", samples=samples, sampled=sampled, validator=v, judge=judge,
                        dataset=dataset, llm=llm,
                    )  # fmt: skip
                    g = gpu_task("align", f"align G{t}", scored=scored, generator=g, llm=llm).outputs["aligned"]
                reccots = sharded("greedy", f"greedy {t}", samples=samples, generator=g, llm=llm)
                judge = task(
                    "ctr_judge", f"CTR judge {t}", dataset=dataset, samples=samples, reccots=reccots,
                    config=sections.outputs["judge"], iteration=t,
                ).outputs["judge"]  # fmt: skip
                optional_v = {} if v is None else {"validator": v}
                v = gpu_task("rectune", f"rectune V{t}", samples=samples, reccots=reccots, llm=llm, **optional_v)
                v = v.outputs["tuned"]
                if v0 is None:
                    v0 = v
                # after the first: the report so far, the scoring round and V0, which judges G(t) fixed
                previous = {} if report is None else {"previous": report, "scored": scored, "fixed_validator": v0}
                evaluation = gpu_task(
                    "evaluate", f"evaluate {t}", samples=samples, reccots=reccots, validator=v, judge=judge, llm=llm,
                    iteration=t, **previous,
                )  # fmt: skip
                report = evaluation.outputs["report"]
            if features:
                embeddings, summary = publish_features(g, evaluation)
        optional_embeddings = {} if embeddings is None else {"embeddings": embeddings}
        ctr = task("train_ctr", "train CTR model", dataset=dataset, ctr=sections.outputs["ctr"], **optional_embeddings)
        results = {"ctr": ctr.outputs["metrics"], "ctr_model": ctr.outputs["model"], "dataset": dataset}
        if iterations:
            published = {} if summary is None else {"published": summary}
            final = task("report", "report", loop=report, ctr=ctr.outputs["metrics"], **published)
            results |= {"curves": final.outputs["page"], "generator": g, "distilled": g0}
        return Outputs(**results)

    # The run's results, shown by KFP's UI and indexed by a local run: the CTR metrics and model,
    # the prepared data and (with the loop) its curves, G(T) and G0; a refresh's: the data and what
    # it published.
    if refresh:
        fields = {"dataset": Dataset, "published": Artifact}
    else:
        fields = {"ctr": Metrics, "ctr_model": Model, "dataset": Dataset}
        fields |= {"curves": HTML, "generator": Model, "distilled": Model} if iterations else {}
    Outputs = NamedTuple("Outputs", list(fields.items()))
    if refresh:  # only the refresh takes active users; a retrain summarises every user with its new G

        def trackrec(config: str = default_config, shards: int = 1, active_within_days: int = 1):
            return body(config, shards, active_within_days)

    else:

        def trackrec(config: str = default_config, shards: int = 1):
            return body(config, shards, 0)

    trackrec.__annotations__["return"] = Outputs
    workspace = dsl.PipelineConfig(workspace=shared_workspace(settings)) if staged_base else None
    name, description = (REFRESH, REFRESH_DESCRIPTION) if refresh else (NAME, __doc__.splitlines()[0])
    return dsl.pipeline(
        name=name, description=description, pipeline_root=settings.pipeline_root, pipeline_config=workspace
    )(trackrec)


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


def shared_workspace(settings: PipelineSettings) -> dsl.WorkspaceConfig:
    """The run's workspace PVC, mounted by the staging task, every GPU task and the TrainJobs' nodes:
    ReadWriteMany."""
    spec = {"accessModes": ["ReadWriteMany"]}
    if settings.training.storage_class:
        spec["storageClassName"] = settings.training.storage_class
    return dsl.WorkspaceConfig(size=settings.training.workspace, kubernetes=dsl.KubernetesWorkspaceConfig(spec))
