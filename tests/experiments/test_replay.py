"""The experiment end to end on generated data: two feature versions and an ESMM model trained on
each, a running experiment, the hold-out period replayed into an exposure log, the readout and the
HTML report through the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.experiments.world import experiment_world
from trackrec.ctr.esmm import predict_tasks
from trackrec.ctr.saved import load_trained
from trackrec.ctr.stream import SplitStream
from trackrec.data.dataset import Dataset
from trackrec.experiments import exposures
from trackrec.features.store import open_store
from trackrec.features.vectors import read_vectors


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return experiment_world(tmp_path_factory.mktemp("world"), epochs=4)


def test_the_replay_scores_each_impression_with_its_users_arm(world, tmp_path):
    from trackrec.experiments.simulate import replay

    store, experiment, dataset_dir = world
    log = exposures.checked(replay(experiment, dataset_dir, open_store(store)), "replay")
    test = Dataset.open(dataset_dir).samples("test", columns=["user_id", "label", "conversion"])
    assert len(log) == len(test) and (log.click.to_numpy() == test.label.to_numpy()).all()
    assert (log.conversion.to_numpy() == test.conversion.to_numpy()).all()
    assert (log.arm.to_numpy() == experiment.arms_of(log.user_id)).all()  # the hash, per user
    for arm in experiment.arms:
        mine = log[log.arm == arm.name]
        assert set(mine.feature_version) == {arm.feature_version} and set(mine.model_version) == {arm.model}
        # each impression carries its arm's model's own prediction with its arm's point-in-time vector
        dataset = Dataset.open(dataset_dir)
        model, trained = load_trained(arm.model, dataset)
        vectors = read_vectors(f"{store.repo}/../{arm.feature_version}.parquet", 8, dataset.n_users)
        direct = predict_tasks(model, SplitStream(dataset, "test", 5, 512, vectors, conversions=True))
        np.testing.assert_allclose(mine.p_click, direct.p_click[(log.arm == arm.name).to_numpy()], rtol=1e-5)
    # users left without a snapshot (every tenth dense id) are feature misses, served zeros
    assert (log.feature_miss == (log.user_id % 10 == 0)).all()
    assert (log.pre_impressions > 0).all()  # the pre-period (train and valid) for CUPED


def test_simulate_and_report_through_the_command_line(world, tmp_path):
    from trackrec.main import app

    store, experiment, dataset_dir = world
    (tmp_path / "store.yaml").write_text(json.dumps({"repo": store.repo, "dim": store.dim}))
    runner = CliRunner()
    common = ["--store", str(tmp_path / "store.yaml"), "--name", experiment.name]
    out = tmp_path / "exposures.parquet"
    ran = runner.invoke(app, ["experiment", "simulate", *common, "--dataset", str(dataset_dir), "--output", str(out)])
    assert ran.exit_code == 0, ran.output
    html, md, numbers = tmp_path / "readout.html", tmp_path / "report.md", tmp_path / "readout.json"
    args = ["experiment", "report", *common, "--exposures", str(out), "--output", str(html), "--markdown", str(md)]
    ran = runner.invoke(app, [*args, "--json", str(numbers), "--replayed"])
    assert ran.exit_code == 0, ran.output
    readout = json.loads(numbers.read_text())
    arms = {a["arm"]: a for a in readout["arms"]}
    log = pd.read_parquet(out)
    assert arms["candidate"]["ctr"] == pytest.approx(log[log.arm == "candidate"].click.mean())
    assert readout["comparisons"][0]["srm_pvalue"] > 0.001  # the hash kept to 50/50
    assert readout["decision"] in {"ship", "keep running", "stop"} and "not the causal effect" in html.read_text()
    assert "| arm | users |" in md.read_text()
    which = runner.invoke(app, ["experiment", "which", *common, "--user", "3"])
    assert experiment.arm_of(3).name in which.output


def test_a_joint_model_scores_a_request_with_click_and_conversion(world):
    from trackrec.features.serving import RequestScorer

    store, experiment, dataset_dir = world
    arm = experiment.arm("candidate")
    answer = RequestScorer(arm.model, dataset_dir, store.repo, arm=arm.name).score(3, 6, [1, 2], [1, 0])
    assert 0 < answer["p_click"] < 1 and 0 < answer["p_conversion"] < 1
    assert answer["feature_version"] == arm.feature_version


def test_a_request_scored_over_http_is_the_request_scored_from_the_repo(world):
    """`features score --url` reads the arm's vector as a ranker does, through feast serve: the same
    vector, version and prediction as from the publisher's repo."""
    from tests.features.test_feast_serve import feast_serve
    from trackrec.features.serving import RequestScorer

    store, experiment, dataset_dir = world
    arm = experiment.arm("candidate")
    local = RequestScorer(arm.model, dataset_dir, store.repo, arm=arm.name).score(3, 6, [1, 2], [1, 0])
    with feast_serve(store) as url:
        remote = RequestScorer(arm.model, dataset_dir, store.repo, arm=arm.name, url=url).score(3, 6, [1, 2], [1, 0])
    assert remote == local and remote["feature_version"] == arm.feature_version
