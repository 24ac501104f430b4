"""The real pipeline through KFP's local runner with fake stages (tests/pipeline_fakes.py): which
task reads which, and what KFP's cache answers when one section of the config changes. Each test
runs its own pipeline in its own folder."""

import copy
from pathlib import Path

import pytest

from pipelines import trackrec_pipeline
from pipelines.local import run_local
from tests.conftest import local_runs, tasks_executed
from tests.fake_stage import made_by
from tests.pipeline_fakes import REAL, fake_components
from trackrec.config import config_from_dict
from trackrec.run_config import RunConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def faked(tmp_path, monkeypatch, tiny_lm_dir, collm_root):
    """A run config (T=2, features) and `run(config, **params) -> (result, tasks executed, outputs)`
    over the real pipeline with its stages faked; `outputs`: task -> output -> what made it."""
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    monkeypatch.setattr(trackrec_pipeline, "build", lambda images, multi_node=False: fake_components(fakes, images))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # each task's process imports tests.pipeline_fakes
    raw = {
        "data": {"root": str(collm_root)},
        "llm": {"base": str(tiny_lm_dir), "iterations": 2, "generation": {"history_tokens": 250, "max_new_tokens": 8}},
        "features": {"store": {"repo": str(tmp_path / "feast")}},
    }

    def run(config, **params):
        run_dir = tmp_path / "run"
        before = local_runs(run_dir)
        result = run_local(config, run_dir, **params)
        outputs = {}  # every file a fake wrote in this run's folder
        for path in (p for folder in local_runs(run_dir) - before for p in folder.rglob("*") if _is_lineage(p)):
            made = made_by(path)
            outputs.setdefault(made["task"], {})[made["output"]] = made
        return result, tasks_executed(run_dir, before), outputs

    return config_from_dict(RunConfig, raw), run


def _is_lineage(path: Path) -> bool:
    return path.is_file() and path.read_bytes().startswith(b'{"stage":')


def test_each_task_reads_the_g_and_v_of_algorithm_2_and_shards_gather_whole(faked):
    config, run = faked
    _, executed, outputs = run(config, shards=2)
    inputs = {task: next(iter(made.values()))["inputs"] for task, made in outputs.items()}
    tasks = {task.split("#")[0] for task in outputs}
    # iteration t (0, 1, 2) is the t+1-th task of its stage: evaluate-3 is iteration 2
    assert inputs["distill"]["samples"] == "select-samples"
    assert inputs["align"]["previous"] == "distill" and inputs["align-2"]["previous"] == "align"
    assert outputs[inputs["align-2"]["scored"]]["gathered"]["stage"] == "gather"  # score 2's shards, gathered
    assert inputs["rectune"]["previous"] is None and inputs["rectune-2"]["previous"] == "rectune"
    assert inputs["evaluate-3"]["validator"] == "rectune-3" and inputs["evaluate-3"]["fixed_validator"] == "rectune"
    assert inputs["evaluate-3"]["previous_report"] == "evaluate-2" and inputs["evaluate"]["previous_report"] is None
    assert inputs["evaluate-3"]["judge"] == "ctr-judge-3"
    assert inputs["publish"]["generator"] == "align-2"  # G(T) wrote the published version and is kept with it
    assert inputs["train-ctr"]["embeddings"].startswith("gather")
    assert (inputs["report"]["loop"], inputs["report"]["ctr"], inputs["report"]["published"]) == (
        "evaluate-3",
        "train-ctr",
        "publish",
    )  # the run's report: the whole loop, the final CTR model, what was published
    gathers = [task for task in outputs if task.startswith("gather")]
    for task in gathers:  # every sharded stage: two shards, each its own task, gathered whole
        parts = inputs[task]["parts"]
        stage = parts[0].split("#")[0]
        assert parts == [f"{stage}#0", f"{stage}#1"], (task, parts)
    assert len(gathers) == 3 + 2 + 2 + 1 + 1  # greedy x3, sample x2, score x2, summarize, encode
    real = tuple(name.replace("_", "-") for name in REAL)  # real stages write no lineage
    assert tasks == {task for task in executed if not task.startswith(real)}


def test_kfp_caches_every_task_whose_section_did_not_change(faked):
    config, run = faked
    run(config)
    arm = copy.deepcopy(config)
    arm.features.arm = "candidate"  # the features section only: publish (which runs always) reads it
    published = {"data-version", "publish", "report"}  # publish checks the store; the report names its arm
    assert run(arm)[1] == {"split-config"} | published
    assert run(arm)[1] == published  # the same again: only the uncached tasks
    ctr = copy.deepcopy(arm)
    ctr.ctr.train.max_epochs += 1  # the final CTR model's section: only it trains again
    assert run(ctr)[1] == {"split-config", "train-ctr"} | published
