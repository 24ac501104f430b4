"""Components of the data stages: prepare_data, select_samples."""

from kfp.dsl import Dataset, Input, Output


def prepare_data(data: str, dataset: Output[Dataset]):
    """Canonical train/valid/test samples and the item table (from local files or s3://)."""
    from trackrec.data.dataset import DataConfig
    from trackrec.run_config import section
    from trackrec.stages.prepare_data import prepare_data as run

    run(section(DataConfig, data, "data"), dataset.path)


def select_samples(dataset: Input[Dataset], llm: str, samples: Output[Dataset]):
    """The users and samples the LLM loop reads."""
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section
    from trackrec.stages.select_samples import select_samples as run

    run(dataset.path, section(LLMConfig, llm, "llm").subset, samples.path)
