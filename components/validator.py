"""Components of V's stages: score, rectune, evaluate."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output, TaskConfig


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
    from trackrec.stages.llm_common import adapter_in
    from trackrec.stages.score import score as run
    from trackrec.stages.shards import Shard

    use_run_cache(workspace)
    adapter = adapter_in(validator.path)
    config = section(LLMConfig, llm, "llm")
    where = {"shard": Shard(shard, shards), "judge": judge.path, "dataset_dir": dataset.path}
    run(samples.path, sampled.path, adapter, config, scored.path, **where)


def rectune(
    samples: Input[Dataset],
    reccots: Input[Dataset],
    llm: str,
    tuned: Output[Model],
    task_config: TaskConfig,
    validator: Input[Model] = None,
    nodes: str = "",
    workspace: str = "",
):
    """V(t): SFT of V(t-1) (a fresh adapter at iteration 0) on the Rec prompt with G(t)'s RecCoTs
    (one process per GPU of the pod, or a TrainJob over `nodes` when the settings ask for several)."""
    from trackrec.llm.base_model import use_run_cache
    from trackrec.stages.launch import run_training_stage
    from trackrec.stages.llm_common import adapter_in

    use_run_cache(workspace)
    adapter = None if validator is None else str(adapter_in(validator.path))
    arguments = {"samples_dir": samples.path, "greedy_dir": reccots.path, "validator": adapter, "output": tuned.path}
    run_training_stage("rectune", arguments | {"llm": llm}, nodes, workspace, task_config, tuned.path)


def evaluate(
    samples: Input[Dataset],
    reccots: Input[Dataset],
    validator: Input[Model],
    judge: Input[Model],
    llm: str,
    iteration: int,
    report: Output[Artifact],
    metrics: Output[Metrics],
    curves: Output[HTML],
    card: Output[Markdown],
    previous: Input[Artifact] = None,
    scored: Input[Dataset] = None,
    fixed_validator: Input[Model] = None,
    workspace: str = "",
):
    """V(t) as recommender on held-out users, G(t)'s reward under the fixed V0 (`fixed_validator`;
    none: V(t) is V0) and the CTR judge's test AUC; the report so far (rows, page, card) for KFP's UI."""
    import shutil
    from pathlib import Path

    from components.metrics import log_metrics
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.llm.report import CARD, write_report
    from trackrec.run_config import section
    from trackrec.stages.evaluate import evaluate as run
    from trackrec.stages.evaluate import loop_rows
    from trackrec.stages.llm_common import adapter_in

    use_run_cache(workspace)
    folder = Path(report.path)
    adapter = adapter_in(validator.path)
    fixed = None if fixed_validator is None else adapter_in(fixed_validator.path)
    config = section(LLMConfig, llm, "llm")
    result = run(
        samples.path, reccots.path, adapter, config, folder / "evaluation", fixed_validator=fixed, judge=judge.path
    )
    rows = loop_rows(previous and previous.path, iteration, result, scored and scored.path)
    shutil.copyfile(write_report(rows, folder), curves.path)
    shutil.copyfile(folder / CARD, card.path)
    log_metrics(metrics, rows[-1])
