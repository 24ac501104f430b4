"""Stage prepare_data: read a source, write canonical train/valid/test samples and the item table."""

from __future__ import annotations

from pathlib import Path

from trackrec.data.dataset import DataConfig, Dataset, build_dataset


def prepare_data(config: DataConfig, output: str | Path) -> Dataset:
    """Build the dataset and write it to `output` whole or not at all."""
    dataset = build_dataset(config)
    dataset.save(output)
    return dataset
