"""The component that sets a run up: check its config, split it into the stages' sections."""

from typing import NamedTuple

from components.stage import stage


@stage("cpu", reach=True)
def split_config(config: str, iterations: int, features: bool) -> NamedTuple(
    "Sections", data=str, llm=str, draw=str, encoder=str, features=str, ctr=str, judge=str
):
    """Check the run config against the pipeline's shape and what the deployment lets a run reach;
    hand each stage its own section."""
    from collections import namedtuple

    from trackrec.reach import from_env
    from trackrec.run_config import SECTIONS, split_sections

    sections = split_sections(config, iterations, features, from_env())
    return namedtuple("Sections", SECTIONS)(**sections)
