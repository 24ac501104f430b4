"""Fake stages swapped into the real pipeline (ilab-on-ocp's mocked stages are the pattern).

Each fake has its stage's own signature (copied from the real component's source), so the pipeline,
its sub-pipelines and KFP's local runner and cache are the real ones; its body only writes, at each
output, which task made it from which inputs. A run then costs a process start a task and no model,
and its outputs tell which task read which: the wiring, tested by running it.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path

from kfp import dsl

from components.catalog import STAGES

# Real: what they return decides what runs (the sections every task reads, the data's identity, the shards).
REAL = ("split_config", "data_version", "plan_shards", "plan_prepare")


def fake_components(folder: Path, images, multi_node: bool = False) -> dict[str, Callable]:
    """`components.catalog.build`'s table with every stage but REAL faked; the fakes' source is
    written to `folder` (KFP reads a component's source from its file)."""
    module = folder / "fake_stages.py"
    fakes = [_fake_source(name, stage.component) for name, stage in STAGES.items() if name not in REAL]
    module.write_text("from kfp.dsl import *  # noqa\nfrom typing import *  # noqa\n\n\n" + "\n\n\n".join(fakes))
    spec = importlib.util.spec_from_file_location("fake_stages", module)
    faked = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(faked)
    return {
        name: dsl.component(
            stage.component if name in REAL else getattr(faked, name),
            base_image=getattr(images, stage.image),
            install_kfp_package=False,
        )
        for name, stage in STAGES.items()
    }


def _fake_source(name: str, component: Callable) -> str:
    """The real component's signature over a body that calls `act`."""
    function = ast.parse(inspect.getsource(component)).body[0]
    function.decorator_list = []  # the declaration (components.stage) stays with the real one
    function.body = ast.parse(f"given = dict(locals())\nfrom tests.fake_stage import act\nact({name!r}, given)").body
    function.returns = None
    return ast.unparse(function)
