"""Components of the data stages: prepare_data (in one pass, or planned, sharded and joined),
select_samples."""

from typing import List

from kfp.dsl import Dataset, Input, Output

from components.stage import stage


@stage("cpu")
def data_version(data: str) -> str:
    """The identity of the data the config reads (content hash, or S3's ETag and size): never cached,
    so a log that grew in place makes prepare_data run again."""
    from trackrec.data.config import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import data_version as identify

    return identify(section(DataConfig, data, "data"))


@stage("cpu")
def prepare_data(data: str, data_version: str, dataset: Output[Dataset]):
    """Canonical train/valid/test samples and the item table (from local files or s3://), for the
    data version KFP's cache keys this task on."""
    from trackrec.data.config import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import prepare_data as run

    run(section(DataConfig, data, "data"), dataset.path, data_version)


@stage("cpu")
def plan_prepare(data: str, data_version: str, shards: int, plan: Output[Dataset]) -> List[int]:
    """The log's id maps and up to `shards` user ranges of about equal events (one shard, the whole
    source, for a source that is not a parquet log); returns the shard indices to fan out over."""
    from trackrec.data.config import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import plan_prepare as run

    return run(section(DataConfig, data, "data"), plan.path, shards, data_version)


@stage("cpu")
def prepare_shard(data: str, plan: Input[Dataset], shard: int, part: Output[Dataset]):
    """One planned shard's samples: only its users' events are read."""
    from trackrec.data.config import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import prepare_shard as run

    run(plan.path, section(DataConfig, data, "data"), part.path, shard)


@stage("cpu")
def join_prepared(
    data: str, data_version: str, plan: Input[Dataset], parts: Input[List[Dataset]], dataset: Output[Dataset]
):
    """The shards as the one dataset prepare_data writes, for the data version KFP's cache keys on."""
    from trackrec.data.config import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import join_prepared as run

    run(plan.path, [part.path for part in parts], section(DataConfig, data, "data"), dataset.path, data_version)


@stage("cpu")
def select_samples(dataset: Input[Dataset], llm: str, samples: Output[Dataset]):
    """The users and samples the LLM loop reads; alignment samples drawn anew for each iteration."""
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.select_samples import select_samples as run

    config = section(LLMConfig, llm, "llm")
    run(dataset.path, config.subset, samples.path, rounds=config.iterations)
