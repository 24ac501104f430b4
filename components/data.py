"""Components of the data stages: prepare_data, select_samples."""

from kfp.dsl import Dataset, Input, Output


def data_version(data: str) -> str:
    """The identity of the data the config reads (content hash, or S3's ETag and size): never cached,
    so a log that grew in place makes prepare_data run again."""
    from trackrec.data.config import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import data_version as identify

    return identify(section(DataConfig, data, "data"))


def prepare_data(data: str, data_version: str, dataset: Output[Dataset]):
    """Canonical train/valid/test samples and the item table (from local files or s3://), for the
    data version KFP's cache keys this task on."""
    from trackrec.data.config import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import prepare_data as run

    run(section(DataConfig, data, "data"), dataset.path, data_version)


def select_samples(dataset: Input[Dataset], llm: str, samples: Output[Dataset]):
    """The users and samples the LLM loop reads; alignment samples drawn anew for each iteration."""
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.select_samples import select_samples as run

    config = section(LLMConfig, llm, "llm")
    run(dataset.path, config.subset, samples.path, rounds=config.iterations)
