"""Components of G's stages: distill, sample, align, greedy, summarize. Models travel as training
stage outputs (trackrec.stages.outputs.Trained) over the base named in the llm section; on a cluster
each GPU task takes the run's workspace, where the staging task put the base (`use_run_cache`)."""

from kfp.dsl import Dataset, Input, Model, Output, TaskConfig

from components.stage import stage
from trackrec.stages.outputs import Greedy, RecCoTs, Sampled


@stage("train", gpu=True, trainjob=True, teacher=True)
def distill(
    samples: Input[Dataset],
    llm: str,
    generator: Output[Model],
    task_config: TaskConfig,
    nodes: str = "",
    workspace: str = "",
):
    """G0: the teacher's RecCoTs for a few users, asked from this pod (it holds the teacher's key),
    then SFT on them (one process per GPU of the pod, or a TrainJob over `nodes`)."""
    import tempfile
    from pathlib import Path

    from trackrec.cluster.launch import train
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.distill import distill as run
    from trackrec.stages.distill import teach

    use_run_cache(workspace)  # the run's staged base: the tokenizer read for the teacher's prompts, the training
    config = section(LLMConfig, llm, "llm")
    corpus = Path(tempfile.mkdtemp()) / "corpus"
    teach(samples.path, config, corpus)
    key = (config.teacher.api_key_env,)  # the training nodes never need it
    train(run, {"corpus": str(corpus)}, llm, generator.path, nodes, workspace, task_config, withheld=key)


@stage("infer", gpu=True, sharded=Sampled)
def sample(
    samples: Input[Dataset],
    generator: Input[Model],
    llm: str,
    iteration: int,
    shard: int,
    shards: int,
    sampled: Output[Dataset],
    workspace: str = "",
):
    """N RecCoTs per train sample of one user shard from G(t-1)."""
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.sample import sample as run
    from trackrec.stages.shards import Shard

    use_run_cache(workspace)
    config = section(LLMConfig, llm, "llm")
    seed = config.generation.seed + iteration
    run(samples.path, generator.path, config, sampled.path, seed, shard=Shard(shard, shards), iteration=iteration)


@stage("train", gpu=True, trainjob=True)
def align(
    scored: Input[Dataset],
    previous: Input[Model],
    llm: str,
    generator: Output[Model],
    task_config: TaskConfig,
    nodes: str = "",
    workspace: str = "",
):
    """G(t): S-DPO of G(t-1) (`previous`) on the scored preferences (one process per GPU of the pod,
    or a TrainJob over `nodes` when the settings ask for several)."""
    from trackrec.cluster.launch import train
    from trackrec.llm.base_model import use_run_cache
    from trackrec.stages.align import align as run

    use_run_cache(workspace)
    inputs = {"scored": scored.path, "previous": previous.path}
    train(run, inputs, llm, generator.path, nodes, workspace, task_config)


@stage("infer", gpu=True, sharded=Greedy)
def greedy(
    samples: Input[Dataset],
    generator: Input[Model],
    llm: str,
    shard: int,
    shards: int,
    greedy: Output[Dataset],
    workspace: str = "",
):
    """One greedy RecCoT per train and eval sample of one user shard from G(t)."""
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.greedy import greedy as run
    from trackrec.stages.shards import Shard

    use_run_cache(workspace)
    run(samples.path, generator.path, section(LLMConfig, llm, "llm"), greedy.path, shard=Shard(shard, shards))


@stage("infer", gpu=True, sharded=RecCoTs)
def summarize(
    dataset: Input[Dataset],
    generator: Input[Model],
    llm: str,
    draw: str,
    shard: int,
    shards: int,
    active_within_days: int,
    reccots: Output[Dataset],
    workspace: str = "",
):
    """G(T)'s RecCoT snapshots of one shard's users (only active users, as of now, when
    active_within_days > 0); `draw`: which users and when (trackrec.features.config.UserDraw)."""
    from trackrec.features.config import UserDraw
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.shards import Shard
    from trackrec.stages.summarize import summarize as run

    use_run_cache(workspace)
    config = section(LLMConfig, llm, "llm")
    drawn = section(UserDraw, draw, "draw")
    run(
        dataset.path,
        generator.path,
        config,
        reccots.path,
        config.iterations,
        drawn.snapshots,
        drawn.users,
        drawn.seed,
        shard=Shard(shard, shards),
        active_within_days=active_within_days,
    )
