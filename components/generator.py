"""Components of G's stages: distill, sample, align, greedy, summarize. Models travel as LoRA
adapters (`<artifact>/adapter`) over the base named in the llm section; on a cluster each GPU task
takes the run's workspace, where the staging task put the base (`use_run_cache`)."""

from kfp.dsl import Dataset, Input, Model, Output, TaskConfig


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

    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.distill import teach
    from trackrec.stages.launch import run_training_stage

    use_run_cache(workspace)  # the run's staged base: the tokenizer read for the teacher's prompts, the training
    config = section(LLMConfig, llm, "llm")
    corpus = Path(tempfile.mkdtemp()) / "corpus"
    teach(samples.path, config, corpus)
    arguments = {"corpus_dir": str(corpus), "llm": llm, "output": generator.path}
    key = (config.teacher.api_key_env,)  # the training nodes never need it
    run_training_stage("distill", arguments, nodes, workspace, task_config, generator.path, withheld=key)


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
    from trackrec.stages.llm_common import adapter_in
    from trackrec.stages.sample import sample as run
    from trackrec.stages.shards import Shard

    use_run_cache(workspace)
    config = section(LLMConfig, llm, "llm")
    adapter = adapter_in(generator.path)
    seed = config.generation.seed + iteration
    run(samples.path, adapter, config, sampled.path, seed, shard=Shard(shard, shards), iteration=iteration)


def align(
    scored: Input[Dataset],
    generator: Input[Model],
    llm: str,
    aligned: Output[Model],
    task_config: TaskConfig,
    nodes: str = "",
    workspace: str = "",
):
    """G(t): S-DPO of G(t-1) on the scored preferences (one process per GPU of the pod, or a
    TrainJob over `nodes` when the settings ask for several)."""
    from trackrec.llm.base_model import use_run_cache
    from trackrec.stages.launch import run_training_stage
    from trackrec.stages.llm_common import adapter_in

    use_run_cache(workspace)
    adapter = str(adapter_in(generator.path))
    arguments = {"scored_dir": scored.path, "generator": adapter, "llm": llm, "output": aligned.path}
    run_training_stage("align", arguments, nodes, workspace, task_config, aligned.path)


def greedy(
    samples: Input[Dataset],
    generator: Input[Model],
    llm: str,
    shard: int,
    shards: int,
    reccots: Output[Dataset],
    workspace: str = "",
):
    """One greedy RecCoT per train and eval sample of one user shard from G(t)."""
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.greedy import greedy as run
    from trackrec.stages.llm_common import adapter_in
    from trackrec.stages.shards import Shard

    use_run_cache(workspace)
    adapter = adapter_in(generator.path)
    run(samples.path, adapter, section(LLMConfig, llm, "llm"), reccots.path, shard=Shard(shard, shards))


def summarize(
    dataset: Input[Dataset],
    generator: Input[Model],
    llm: str,
    users: str,
    shard: int,
    shards: int,
    active_within_days: int,
    reccots: Output[Dataset],
    workspace: str = "",
):
    """G(T)'s RecCoT snapshots of one shard's users (only active users, as of now, when
    active_within_days > 0); `users`: which users and when (trackrec.features.config.UserDraw)."""
    from trackrec.features.config import UserDraw
    from trackrec.llm.base_model import use_run_cache
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.llm_common import adapter_in
    from trackrec.stages.shards import Shard
    from trackrec.stages.summarize import summarize as run

    use_run_cache(workspace)
    config = section(LLMConfig, llm, "llm")
    draw = section(UserDraw, users, "users")
    run(
        dataset.path,
        adapter_in(generator.path),
        config,
        reccots.path,
        config.iterations,
        draw.snapshots,
        draw.users,
        draw.seed,
        shard=Shard(shard, shards),
        active_within_days=active_within_days,
    )
