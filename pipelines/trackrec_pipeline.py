"""Algorithm 2 as a KFP v2 pipeline: distill once, T alternating iterations unrolled in Python
(KFP v2 has no loops), then the RecCoT features -> Feast -> the CTR model.

The inference stages (sample, score, greedy, summarize) and encode fan out over user shards with
ParallelFor and are gathered into one folder; prepare_data does too where the settings ask
(`prepare_shards`: a log larger than one pod). The same pipeline runs on a cluster and, through
`kfp.local`, on one machine (`trackrec run`). On a cluster, one CPU task stages the base model on
the run's workspace and every GPU task reads it there: one fetch from S3 per run, not one per pod
(docs/deploy.md).
"""

from dataclasses import dataclass
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model

from components.catalog import build
from pipelines.settings import PipelineSettings
from pipelines.tasks import Tasks

NAME = "trackrec"
REFRESH = "trackrec-refresh"
REFRESH_DESCRIPTION = "The daily refresh: active users' RecCoT snapshots as of now, by the arm's G, into Feast."

Channel = dsl.pipeline_channel.PipelineChannel


@dataclass(frozen=True)
class Inputs:
    """What every part of a run reads: the config's sections, the data's identity and the prepared
    dataset."""

    sections: dsl.PipelineTask
    version: dsl.PipelineTask
    dataset: Channel

    def section(self, name: str) -> Channel:
        return self.sections.outputs[name]


@dataclass(frozen=True)
class Learnt:
    """Algorithm 2's results: G(T), G0, and the last evaluate task (its report holds every
    iteration's rows)."""

    generator: Channel
    distilled: Channel
    evaluation: dsl.PipelineTask


def prepare(tasks: Tasks, config, iterations: int | None, features: bool, settings: PipelineSettings) -> Inputs:
    """Check and split the config, identify the data and prepare it (in shards where the settings ask)."""
    sections = tasks("split_config", "check config", config=config, iterations=iterations or 0, features=features)
    data = sections.outputs["data"]
    version = tasks("data_version", "identify data", data=data).set_caching_options(False)  # the log may grow
    if settings.prepare_shards > 1:
        prepared = tasks.prepare_fan_out(data=data, data_version=version.output, shards=settings.prepare_shards)
        dataset = prepared.set_display_name("prepare data").output
    else:
        dataset = tasks("prepare_data", "prepare data", data=data, data_version=version.output).outputs["dataset"]
    return Inputs(sections, version, dataset)


def alternating_learning(tasks: Tasks, run: Inputs, iterations: int) -> Learnt:
    """Algorithm 2: G0 distilled from the teacher (3.5) and V0 Rec-tuned on its RecCoTs; then for
    t = 1..T, Stage 1 (G): Algorithm 1 (G(t-1) samples N RecCoTs per sample, V(t-1) or the CTR judge
    scores them) and S-DPO of G(t-1) on the preferences; Stage 2 (V): Rec-tuning of V(t-1) on G(t)'s
    greedy RecCoTs. Every iteration ends evaluated (the report grows while the loop runs)."""
    llm = run.section("llm")
    samples = tasks("select_samples", "select samples", dataset=run.dataset, llm=llm).outputs["samples"]
    g = g0 = tasks("distill", "distill G0", samples=samples, llm=llm).outputs["generator"]
    v, judge, evaluation = validator_training(tasks, run, samples, g, 0)
    v0 = v  # judges every later G(t) fixed
    for t in range(1, iterations + 1):
        # Stage 1, after evaluate(t-1): kfp.local would otherwise leave every evaluate task to the end
        sampled = tasks(
            "sample", f"sample {t}", after=evaluation, samples=samples, generator=g, llm=llm, iteration=t
        ).outputs["sampled"]
        scored = tasks(
            "score", f"score {t}", samples=samples, sampled=sampled, validator=v, judge=judge, dataset=run.dataset,
            llm=llm,
        ).outputs["scored"]  # fmt: skip
        g = tasks("align", f"align G{t}", scored=scored, previous=g, llm=llm).outputs["generator"]
        # Stage 2
        rounds = {"previous_v": v, "previous_report": evaluation.outputs["report"], "scored": scored, "v0": v0}
        v, judge, evaluation = validator_training(tasks, run, samples, g, t, **rounds)
    return Learnt(generator=g, distilled=g0, evaluation=evaluation)


def validator_training(
    tasks: Tasks, run: Inputs, samples: Channel, g: Channel, t: int, previous_v: Channel | None = None,
    previous_report: Channel | None = None, scored: Channel | None = None, v0: Channel | None = None,
) -> tuple[Channel, Channel, dsl.PipelineTask]:  # fmt: skip
    """G(t)'s greedy RecCoTs; the CTR judge trained on them (the report's CTR curve; DPO4Rec's reward of
    round t+1); V(t) Rec-tuned from V(t-1) on them; evaluate(t). Returns V(t), the judge, evaluate(t)."""
    llm = run.section("llm")
    greedy = tasks("greedy", f"greedy {t}", samples=samples, generator=g, llm=llm).outputs["greedy"]
    judge = tasks(
        "ctr_judge", f"CTR judge {t}", dataset=run.dataset, samples=samples, greedy=greedy,
        config=run.section("judge"), iteration=t,
    ).outputs["judge"]  # fmt: skip
    previous = {} if previous_v is None else {"previous": previous_v}
    v = tasks("rectune", f"rectune V{t}", samples=samples, greedy=greedy, llm=llm, **previous).outputs["validator"]
    so_far = {} if previous_report is None else {"previous_report": previous_report, "scored": scored}
    so_far |= {} if v0 is None else {"fixed_validator": v0}
    evaluation = tasks(
        "evaluate", f"evaluate {t}", samples=samples, greedy=greedy, validator=v, judge=judge, llm=llm, iteration=t,
        **so_far,
    )  # fmt: skip
    return v, judge, evaluation


def publish_features(
    tasks: Tasks, run: Inputs, g: Channel, active_within_days, after: dsl.PipelineTask | None, refresh: bool
) -> tuple[Channel, Channel]:
    """summarize -> encode -> publish; a retrain's version keeps `g`, the G that wrote it; a
    refresh's names the G of the version it carries from (current_generator's). Returns the
    embeddings and what was published."""
    reccots = tasks(
        "summarize", "summarize users", after=after, dataset=run.dataset, generator=g, llm=run.section("llm"),
        draw=run.section("draw"), active_within_days=active_within_days,
    ).outputs["reccots"]  # fmt: skip
    embeddings = tasks("encode", "encode", reccots=reccots, encoder=run.section("encoder")).outputs["embeddings"]
    published = tasks(
        "publish", "publish to Feast", embeddings=embeddings, features=run.section("features"),
        active_within_days=active_within_days, data_version=run.version.output,
        **{"refreshed_from" if refresh else "generator": g},
    )  # fmt: skip
    published.set_caching_options(False)  # it checks the store itself: cheap, and the store may change
    return embeddings, published.outputs["published"]


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
    tasks = Tasks(build(settings.images, multi_node), settings, multi_node)

    def body(config, shards, active_within_days):
        tasks.shards = shards
        run = prepare(tasks, config, iterations, features, settings)
        if staged_base:  # the GPU tasks read the base from the run's workspace, staged once
            staging = tasks(
                "stage_base", "stage the base model", llm=run.section("llm"), workspace=dsl.WORKSPACE_PATH_PLACEHOLDER
            )
            tasks.base = {"workspace": staging.set_caching_options(False).output}  # each run's workspace is new
        if refresh:
            g = tasks("current_generator", "G of the arm's version", features=run.section("features"))
            _, published = publish_features(
                tasks, run, g.set_caching_options(False).outputs["generator"], active_within_days, None, True
            )
            return Outputs(dataset=run.dataset, published=published)
        results, vectors = {"dataset": run.dataset}, {}
        if iterations:
            learnt = alternating_learning(tasks, run, iterations)
            results |= {"generator": learnt.generator, "distilled": learnt.distilled}
            if features:
                embeddings, published = publish_features(
                    tasks, run, learnt.generator, active_within_days, learnt.evaluation, False
                )
                vectors = {"embeddings": embeddings}
        ctr = tasks("train_ctr", "train CTR model", dataset=run.dataset, ctr=run.section("ctr"), **vectors)
        results |= {"ctr": ctr.outputs["metrics"], "ctr_model": ctr.outputs["model"]}
        if iterations:
            shown = {"published": published} if features else {}
            loop = learnt.evaluation.outputs["report"]
            report = tasks("report", "report", loop=loop, ctr=ctr.outputs["metrics"], **shown)
            results |= {"curves": report.outputs["page"], "loop": loop}
        return Outputs(**results)

    # The run's results, shown by KFP's UI and indexed by a local run: the CTR metrics and model,
    # the prepared data and (with the loop) the run's page, the loop's report (its rows), G(T) and
    # G0; a refresh's: the data and what it published.
    if refresh:
        fields = {"dataset": Dataset, "published": Artifact}
    else:
        fields = {"ctr": Metrics, "ctr_model": Model, "dataset": Dataset}
        fields |= {"curves": HTML, "loop": Artifact, "generator": Model, "distilled": Model} if iterations else {}
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


def shared_workspace(settings: PipelineSettings) -> dsl.WorkspaceConfig:
    """The run's workspace PVC, mounted by the staging task, every GPU task and the TrainJobs' nodes:
    ReadWriteMany."""
    spec = {"accessModes": ["ReadWriteMany"]}
    if settings.training.storage_class:
        spec["storageClassName"] = settings.training.storage_class
    return dsl.WorkspaceConfig(size=settings.training.workspace, kubernetes=dsl.KubernetesWorkspaceConfig(spec))
