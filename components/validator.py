"""Components of V's stages: score, rectune, evaluate."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output, TaskConfig

from components.stage import stage
from trackrec.stages.outputs import Scored


@stage("infer", gpu=True, sharded=Scored)
def score(
    samples: Input[Dataset],
    sampled: Input[Dataset],
    validator: Input[Model],
    judge: Input[Model],
    dataset: Input[Dataset],
    llm: str,
    shard: int,
    shards: int,
    scored: Output[Dataset],
    workspace: str = "",
):
    """The reward of every sampled RecCoT of one user shard, from V(t-1) or (llm.reward ctr) the CTR
    judge trained on G(t-1)'s RecCoTs; the preferences."""
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.score import score as run
    from trackrec.stages.shards import Shard

    use_run_cache(workspace)
    config = section(LLMConfig, llm, "llm")
    where = {"shard": Shard(shard, shards), "judge": judge.path, "dataset": dataset.path}
    run(samples.path, sampled.path, validator.path, config, scored.path, **where)


@stage("train", gpu=True, trainjob=True)
def rectune(
    samples: Input[Dataset],
    greedy: Input[Dataset],
    llm: str,
    validator: Output[Model],
    task_config: TaskConfig,
    previous: Input[Model] = None,
    nodes: str = "",
    workspace: str = "",
):
    """V(t): SFT of V(t-1) (`previous`; a fresh adapter at iteration 0) on the Rec prompt with G(t)'s
    RecCoTs (one process per GPU of the pod, or a TrainJob over `nodes` when the settings ask for
    several)."""
    from trackrec.cluster.launch import train
    from trackrec.llm.base_model import use_run_cache
    from trackrec.stages.rectune import rectune as run

    use_run_cache(workspace)
    inputs = {"samples": samples.path, "greedy": greedy.path, "previous": previous and previous.path}
    train(run, inputs, llm, validator.path, nodes, workspace, task_config)


@stage("infer", gpu=True)
def evaluate(
    samples: Input[Dataset],
    greedy: Input[Dataset],
    validator: Input[Model],
    judge: Input[Model],
    llm: str,
    iteration: int,
    report: Output[Artifact],
    metrics: Output[Metrics],
    curves: Output[HTML],
    card: Output[Markdown],
    previous_report: Input[Artifact] = None,
    scored: Input[Dataset] = None,
    fixed_validator: Input[Model] = None,
    workspace: str = "",
):
    """V(t) as recommender on held-out users, G(t)'s reward under the fixed V0 (`fixed_validator`;
    none: V(t) is V0) and the CTR judge's test AUC; the report so far (`previous_report`: the last
    evaluate's; its rows, page and card) for KFP's UI."""
    import shutil

    from components.metrics import log_metrics
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.llm.report import write_report
    from trackrec.run_config import section
    from trackrec.stages.evaluate import evaluate as run
    from trackrec.stages.evaluate import loop_rows
    from trackrec.stages.outputs import Report

    use_run_cache(workspace)
    files = Report(report.path)
    config = section(LLMConfig, llm, "llm")
    fixed = fixed_validator and fixed_validator.path
    result = run(
        samples.path, greedy.path, validator.path, config, files.evaluation.folder, fixed_validator=fixed,
        judge=judge.path,
    )  # fmt: skip
    rows = loop_rows(previous_report and previous_report.path, iteration, result, scored and scored.path)
    shutil.copyfile(write_report(rows, files), curves.path)
    shutil.copyfile(files.card, card.path)
    log_metrics(metrics, rows[-1])
