"""README's "Extending: a stage", step by step, in a temporary package: a function, its output's
declaration, the stage's declaration and its place in a pipeline are all it takes; the stage then
compiles onto its pool and runs through KFP's local runner, sharded and gathered."""

import json
import re
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kfp import compiler, dsl, local

from components.catalog import build
from components.stage import STAGES
from pipelines.settings import PipelineSettings
from pipelines.tasks import Tasks
from trackrec.config import config_to_dict
from trackrec.data.config import DataConfig
from trackrec.data.dataset import Dataset

ROOT = Path(__file__).resolve().parents[1]

# 1. A function `(inputs, config, output, options)` that writes its output folder with `atomic_dir`.
# 2. Its output's files, each named once, in an `Output` subclass (`trackrec/stages/outputs.py`).
STAGE = '''
"""A toy stage: each user's number of train samples."""

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.data.dataset import Dataset
from trackrec.stages.outputs import Output
from trackrec.stages.shards import WHOLE, Shard


class Counts(Output):
    tables = {"table": "counts.parquet"}


def count(dataset, config: dict, output, shard: Shard = WHOLE) -> int:
    prepared = Dataset.open(dataset)
    samples = prepared.samples(config["split"], ["user_id"], users=shard.users(prepared.n_users))
    table = samples.groupby("user_id").size().rename("samples").reset_index()
    with atomic_dir(output) as tmp:
        table.to_parquet(Counts(tmp).table)
    return len(table)
'''

# 3. `@stage(image, gpu=, sharded=, trainjob=, store=, reach=, teacher=)` over its component in `components/`.
COMPONENT = '''
from kfp.dsl import Dataset, Input, Output

from components.stage import stage
from toy.stage import Counts


@stage("cpu", sharded=Counts)
def count(dataset: Input[Dataset], config: str, shard: int, shards: int, counts: Output[Dataset]):
    """Each user's train samples, for one shard of the users."""
    import json

    from toy.stage import count as run
    from trackrec.stages.shards import Shard

    run(dataset.path, json.loads(config), counts.path, shard=Shard(shard, shards))
'''


# 4. Its place in `pipelines/trackrec_pipeline.py`: `tasks("<stage>", "<name in KFP's UI>", **inputs)`.
def toy_pipeline(settings: PipelineSettings):
    tasks = Tasks(build(settings.images), settings, multi_node=False)

    @dsl.pipeline(name="toy")
    def toy(data: str, shards: int = 2) -> dsl.Dataset:
        tasks.shards = shards
        dataset = tasks("prepare_data", "prepare data", data=data, data_version="toy").outputs["dataset"]
        return tasks("count", "count samples", dataset=dataset, config=json.dumps({"split": "train"})).outputs["counts"]

    return toy


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """The toy package importable here and in each task's process; the stage table as it was after."""
    package = tmp_path / "package" / "toy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "stage.py").write_text(textwrap.dedent(STAGE))
    (package / "component.py").write_text(textwrap.dedent(COMPONENT))
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setenv("PYTHONPATH", f"{package.parent}:{ROOT}")
    table = dict(STAGES)
    yield package
    STAGES.clear()
    STAGES.update(table)
    for name in [m for m in sys.modules if m == "toy" or m.startswith("toy.")]:
        del sys.modules[name]


def test_a_stage_added_in_its_own_package_compiles_onto_its_pool_and_runs_sharded(toy_package, tmp_path, collm_root):
    import toy.component  # noqa: F401  # the declaration puts it in the stage table
    from toy.stage import Counts

    assert STAGES["count"].sharded is Counts and STAGES["count"].output == "counts"
    settings = PipelineSettings(pipeline_root=str(tmp_path / "root"), reach=None, retries=0)

    compiler.Compiler().compile(toy_pipeline(settings), str(tmp_path / "toy.yaml"))
    spec, platform = yaml.safe_load_all((tmp_path / "toy.yaml").read_text())
    assert "comp-count-shards" in spec["components"]  # fanned out over user shards, from its signature
    count_executor = spec["deploymentSpec"]["executors"]["exec-count"]["container"]
    assert count_executor["image"] == settings.images.cpu
    assert count_executor["resources"]["resourceMemoryLimit"] == settings.cpu_pool.memory  # placed on its pool

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    data = json.dumps(config_to_dict(DataConfig(root=str(collm_root))))
    gathered = toy_pipeline(settings)(data=data, shards=2).output
    parts = sorted((tmp_path / "root").glob("*/**/count/counts"))
    assert len(parts) == 2  # a task per shard
    counts = pd.read_parquet(Counts(gathered.path).table)
    prepared = Dataset.open(next((tmp_path / "root").glob("*/prepare-data/dataset")))
    expected = prepared.samples("train", ["user_id"]).groupby("user_id").size()
    assert counts.set_index("user_id").samples.sort_index().to_dict() == expected.to_dict()


def test_readmes_extending_steps_are_this_tests_steps_line_for_line():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**A stage**", 1)[1].split("\n- **", 1)[0]
    steps = re.findall(r"^\s*(\d\. .+)$", section, flags=re.MULTILINE)
    here = re.findall(r"^# (\d\. .+)$", Path(__file__).read_text(), flags=re.MULTILINE)
    assert steps == here and len(steps) == 4
