"""The readout on exposure logs with known per-arm rates: it recovers them, ships a real CTR lift,
keeps running on none, and is stopped by the sample-ratio check when the split is broken."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.experiments.test_assignment import experiment
from tests.experiments.world import exposures
from trackrec.experiments import exposures as exposure_log
from trackrec.experiments.readout import readout

RATES = {"arm0": (0.20, 0.30), "arm1": (0.24, 0.30)}  # a 20% CTR lift, the same CVR


def test_a_real_ctr_lift_ships_with_an_interval_that_covers_it():
    result = readout(experiment(0.5, 0.5), exposures(RATES, {"arm0": 0.5, "arm1": 0.5}))
    (comparison,) = result.comparisons
    assert comparison.srm_pvalue > 0.05 and comparison.cuped
    ctr = comparison.lifts["ctr"]
    assert ctr["low"] < 0.20 < ctr["high"] and ctr["low"] > 0, ctr
    cvr = comparison.lifts["cvr"]
    assert cvr["low"] < 0 < cvr["high"], cvr  # no CVR effect: the interval holds 0
    assert (comparison.decision, comparison.reason) == ("ship", "CTR up") and result.decision == "ship"
    arms = {a["arm"]: a for a in result.arms}
    assert arms["arm0"]["cvr"] == pytest.approx(0.30, abs=0.03) and arms["arm1"]["ctr"] == pytest.approx(0.24, abs=0.02)


def test_no_difference_keeps_running():
    same = {"arm0": (0.2, 0.3), "arm1": (0.2, 0.3)}
    (comparison,) = readout(experiment(0.5, 0.5), exposures(same, {"arm0": 0.5, "arm1": 0.5}, seed=3)).comparisons
    assert comparison.decision == "keep running", comparison


def test_a_broken_split_is_stopped_by_the_sample_ratio_check(tmp_path):
    """50/50 was set, 55/45 arrived (2,200 against 1,800 users: p about 3e-10): no lift is read."""
    log = exposures(RATES, {"arm0": 0.55, "arm1": 0.45})
    result = readout(experiment(0.5, 0.5), log)
    (comparison,) = result.comparisons
    assert comparison.srm_pvalue < 1e-6
    assert (comparison.decision, comparison.reason) == ("stop", "sample ratio mismatch")
    assert comparison.lifts == {} and result.decision == "stop"
    # the same split read against the shares it was meant to have (55/45) passes
    meant = readout(experiment(0.55, 0.45), log).comparisons[0]
    assert meant.srm_pvalue > 0.05 and meant.decision == "ship"
    # and the command stops with its own exit code, the report saying why
    from trackrec.main import app

    exposure_log.write(log, tmp_path / "exposures.parquet")
    (tmp_path / "exp.json").write_text(experiment(0.5, 0.5).to_json())
    args = ["experiment", "report", "--exposures", str(tmp_path / "exposures.parquet"), "--output"]
    args += [str(tmp_path / "readout.html"), "--definition", str(tmp_path / "exp.json")]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 3, run.output
    assert "sample ratio mismatch" in (tmp_path / "readout.html").read_text()


def test_a_treatment_serving_zeros_to_more_users_is_stopped_by_the_guardrail():
    log = exposures(RATES, {"arm0": 0.5, "arm1": 0.5})
    treated = (log.arm == "arm1").to_numpy()
    log.loc[treated, "feature_miss"] = (np.arange(treated.sum()) % 10 == 0).astype("int8")  # 10% misses
    (comparison,) = readout(experiment(0.5, 0.5), log).comparisons
    assert (comparison.decision, comparison.reason) == ("stop", "guardrail: feature-miss rate")


def test_cuped_narrows_the_interval_with_the_pre_period():
    log = exposures(RATES, {"arm0": 0.5, "arm1": 0.5}, seed=1)
    with_pre = readout(experiment(0.5, 0.5), log).comparisons[0].lifts["ctr"]
    without = readout(experiment(0.5, 0.5), log.drop(columns=["pre_clicks", "pre_impressions"])).comparisons[0]
    assert not without.cuped
    width = lambda lift: lift["high"] - lift["low"]  # noqa: E731
    assert width(with_pre) < 0.9 * width(without.lifts["ctr"])


def test_an_arm_that_received_nobody_is_a_sample_ratio_mismatch():
    log = exposures(RATES, {"arm0": 1.0, "arm1": 0.0}, users=300)
    (comparison,) = readout(experiment(0.5, 0.5), log).comparisons
    assert (comparison.decision, comparison.reason, comparison.lifts) == ("stop", "sample ratio mismatch", {})


def test_a_miss_rate_difference_the_split_alone_can_make_does_not_stop_it():
    """The same kind of users miss in both arms, 18 of 200 and 23 of 200: 2.5 points apart, over the
    2-point guardrail, but well inside what chance gives 200 users an arm."""
    log = exposures(RATES, {"arm0": 0.5, "arm1": 0.5}, users=400)
    missed = set(range(1, 19)) | set(range(201, 224))  # users 1..200 are arm0's, 201..400 arm1's
    log["feature_miss"] = log.user_id.isin(missed).astype("int8")
    (comparison,) = readout(experiment(0.5, 0.5), log).comparisons
    assert comparison.lifts["feature_miss_rate"]["effect"] > 0.02
    assert not comparison.reason.startswith("guardrail"), comparison
