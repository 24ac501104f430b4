"""KFP v2 components: one per stage, each a thin wrapper over a function in `trackrec.stages`.

KFP ships a component's source in the pipeline YAML and runs it in its image, so each wrapper
imports what it needs inside its body. `build(images)` makes the components for a set of images
(named in one place: `pipelines.settings.Images`).
"""

from __future__ import annotations

from collections.abc import Callable

from kfp import dsl

from components.config import split_config
from components.data import data_version, prepare_data, select_samples
from components.features import encode, publish, train_ctr
from components.generator import align, distill, greedy, sample, summarize
from components.shards import gather, plan_shards
from components.validator import evaluate, rectune, score

# stage -> (wrapper, which image runs it)
CATALOG: dict[str, tuple[Callable, str]] = {
    "split_config": (split_config, "cpu"),
    "plan_shards": (plan_shards, "cpu"),
    "gather": (gather, "cpu"),
    "data_version": (data_version, "cpu"),
    "prepare_data": (prepare_data, "cpu"),
    "select_samples": (select_samples, "cpu"),
    "distill": (distill, "train"),
    "sample": (sample, "infer"),
    "score": (score, "infer"),
    "align": (align, "train"),
    "greedy": (greedy, "infer"),
    "rectune": (rectune, "train"),
    "evaluate": (evaluate, "infer"),
    "summarize": (summarize, "infer"),
    "encode": (encode, "cpu"),
    "train_ctr": (train_ctr, "cpu"),
    "publish": (publish, "cpu"),
}


def build(images) -> dict[str, Callable]:
    """stage -> KFP component running in its image; the images' own packages include kfp."""
    return {
        name: dsl.component(function, base_image=getattr(images, image), install_kfp_package=False)
        for name, (function, image) in CATALOG.items()
    }
