"""Arms as experiments on a real Feast store (SQLite): promote moves an arm's features and model
together and rollback returns both; a running experiment freezes its arms, so the scheduled
publish, an assign, a promote and a prune leave its treatment as it started."""

from __future__ import annotations

import pytest

from tests.features.test_publish import DIM, embeddings
from trackrec.experiments import registry
from trackrec.experiments.assignment import ArmSpec, Experiment, ExperimentError
from trackrec.features import arms, versions
from trackrec.features.config import FeaturesConfig
from trackrec.features.store import StoreConfig, StoreError, open_store
from trackrec.stages.outputs import Embeddings


def store(tmp_path, *names: str) -> StoreConfig:
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    for seed, name in enumerate(names, start=1):
        versions.publish(embeddings(range(1, 11), seed=seed), name, open_store(config), progress=False)
    return config


def ab(name: str = "exp1", treatment: str = "v2") -> Experiment:
    arms = (ArmSpec("control", "v1", "models/m1", 0.5), ArmSpec("candidate", treatment, f"models/m_{treatment}", 0.5))
    return Experiment(name, f"salt-{name}", arms, "2026-12-01T00:00:00+00:00")


def test_promote_moves_the_model_with_the_features_and_rollback_returns_both(tmp_path):
    config = store(tmp_path, "v1", "v2")
    arms.assign(open_store(config), "control", "v1", model="models/m1")
    arms.assign(open_store(config), "candidate", "v2", model="models/m2")
    promoted = arms.promote(open_store(config))
    assert (promoted["version"], promoted["model"]) == ("v2", "models/m2")
    opened = open_store(config)
    assert (arms.arm_version(opened, "control"), arms.arm_model(opened, "control")) == ("v2", "models/m2")
    back = arms.rollback(open_store(config))
    assert (back["version"], back["model"]) == ("v1", "models/m1")
    opened = open_store(config)
    assert (arms.arm_version(opened, "control"), arms.arm_model(opened, "control")) == ("v1", "models/m1")
    log = arms.history(opened, "control")
    assert [(e["version"], e["model"], e["action"]) for e in log] == [
        ("v1", "models/m1", "assign"), ("v2", "models/m2", "promote from candidate"), ("v1", "models/m1", "rollback"),
    ]  # fmt: skip
    # a new version assigned without a model names none: never the old version's model on new features
    assert arms.assign(open_store(config), "control", "v2")["model"] is None
    assert arms.arm_model(open_store(config), "control") is None


def test_a_scheduled_publish_during_a_running_experiment_leaves_its_treatment_unchanged(tmp_path):
    """configs/cluster.yaml's recurring run publishes to `candidate`: while an experiment holds that
    arm, the new version is published whole but the arm keeps the version and model it started with."""
    from trackrec.stages.publish import publish

    config = store(tmp_path, "v1", "v2")
    registry.start(open_store(config), ab())
    (tmp_path / "daily").mkdir()
    embeddings(range(1, 11), seed=7).to_parquet(Embeddings(tmp_path / "daily").table)
    summary = publish(tmp_path / "daily", FeaturesConfig(store=config, arm="candidate"), tmp_path / "out")
    opened = open_store(config)
    assert versions.is_published(opened, summary["version"])  # published, whole
    assert summary["arm"] == {"arm": "candidate", "version": "v2", "changed": False, "frozen_by": "exp1"}
    assert (arms.arm_version(opened, "candidate"), arms.arm_model(opened, "candidate")) == ("v2", "models/m_v2")
    assert registry.get(opened.feast, "exp1").arm("candidate").feature_version == "v2"
    # the experiment's versions are never pruned while it runs, though older than the newest one
    assert versions.prune(opened, keep=1) == []
    # once stopped, the next scheduled publish moves the arm again
    registry.stop(opened, "exp1")
    (tmp_path / "next").mkdir()
    embeddings(range(1, 11), seed=8).to_parquet(Embeddings(tmp_path / "next").table)
    moved = publish(tmp_path / "next", FeaturesConfig(store=config, arm="candidate"), tmp_path / "out2")
    assert moved["arm"]["changed"] and arms.arm_version(open_store(config), "candidate") == moved["version"]


def test_a_running_experiments_arms_refuse_to_move_and_a_second_experiment_is_refused(tmp_path):
    config = store(tmp_path, "v1", "v2", "v3")
    arms.assign(open_store(config), "candidate", "v1")  # something to roll back to
    registry.start(open_store(config), ab())
    for move in (
        lambda s: arms.assign(s, "candidate", "v3"),
        lambda s: arms.promote(s),
        lambda s: arms.rollback(s, "candidate"),
    ):
        with pytest.raises(StoreError, match="frozen by running experiment 'exp1'"):
            move(open_store(config))
    assert arms.arm_version(open_store(config), "candidate") == "v2"
    with pytest.raises(ExperimentError, match="experiment 'exp1' is running on arm"):
        registry.start(open_store(config), ab("exp2", "v3"))
    registry.start(open_store(config), ab("exp2", "v3"), force=True)  # a new candidate: a new experiment
    opened = open_store(config)
    assert [(e.name, e.status) for e in registry.experiments(opened.feast)] == [
        ("exp1", "stopped"),
        ("exp2", "running"),
    ]
    assert arms.arm_version(opened, "candidate") == "v3"
    with pytest.raises(ExperimentError, match="exists"):
        registry.start(opened, ab("exp1", "v3"))


def test_the_command_line_starts_lists_and_stops_with_a_promotion(tmp_path):
    import json

    from typer.testing import CliRunner

    from trackrec.main import app

    config = store(tmp_path, "v1", "v2")
    (tmp_path / "store.yaml").write_text(json.dumps({"repo": config.repo, "dim": DIM}))
    runner, where = CliRunner(), ["--store", str(tmp_path / "store.yaml")]
    start = ["experiment", "start", *where, "--name", "e1", "--arm", "control=v1", "--arm", "candidate=v2"]
    refused = runner.invoke(app, [*start, "--model", "control=m1"])
    assert refused.exit_code == 2 and "missing for ['candidate']" in refused.output
    ran = runner.invoke(app, [*start, "--model", "control=m1", "--model", "candidate=m2", "--share", "control=0.9"])
    assert ran.exit_code == 2 and "must sum to 1" in ran.output  # 0.9 + the default 0.5
    ran = runner.invoke(app, [*start, "--model", "control=m1", "--model", "candidate=m2"])
    assert ran.exit_code == 0, ran.output
    listed = runner.invoke(app, ["experiment", "list", *where])
    assert "running" in listed.output and "m2" in listed.output
    ran = runner.invoke(app, ["experiment", "stop", *where, "--name", "e1", "--promote", "candidate"])
    assert ran.exit_code == 0, ran.output
    opened = open_store(config)
    assert (arms.arm_version(opened, "control"), arms.arm_model(opened, "control")) == ("v2", "m2")
    assert registry.get(opened.feast, "e1").status == "stopped"


def test_the_command_line_assigns_an_arm_its_version_and_model(tmp_path):
    """`trackrec features assign --model` records the pair that promote and rollback move."""
    import json

    import yaml
    from typer.testing import CliRunner

    from trackrec import cli

    config = store(tmp_path, "v1")
    (tmp_path / "store.yaml").write_text(yaml.safe_dump({"repo": config.repo, "dim": DIM}))
    command = ["features", "assign", "--store", str(tmp_path / "store.yaml"), "--arm", "control", "--version", "v1"]
    assigned = CliRunner().invoke(cli.app, [*command, "--model", "models/m1"])
    assert assigned.exit_code == 0, assigned.output
    assert arms.arm_model(open_store(config), "control") == "models/m1"
    listed = CliRunner().invoke(cli.app, ["features", "list", "--json", "--store", str(tmp_path / "store.yaml")])
    assert {arm["arm"]: arm.get("model") for arm in json.loads(listed.output)["arms"]} == {"control": "models/m1"}
