"""The component that sets a run up: check its config, split it into the stages' sections."""

from typing import NamedTuple


def split_config(config: str, iterations: int, features: bool) -> NamedTuple(
    "Sections", data=str, llm=str, users=str, encoder=str, features=str, ctr=str
):
    """Check the run config against the pipeline's shape; hand each stage its own section."""
    from collections import namedtuple

    from trackrec.run_config import SECTIONS, split_sections

    sections = split_sections(config, iterations, features)
    return namedtuple("Sections", SECTIONS)(**sections)
