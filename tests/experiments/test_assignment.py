"""User -> arm by the hash of (salt, user id): the same in another process (another PYTHONHASHSEED),
the shares met within a stated tolerance, and the scalar and vector paths agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from trackrec.experiments.assignment import ArmSpec, Experiment, ExperimentError, bucket


def experiment(*shares: float, salt: str = "s1") -> Experiment:
    arms = tuple(ArmSpec(f"arm{i}", f"v{i}", f"m{i}", share) for i, share in enumerate(shares))
    return Experiment("exp1", salt, arms, "2026-12-01T00:00:00+00:00")


def test_the_assignment_is_the_same_in_another_process():
    users = list(range(1, 2001))
    mine = experiment(0.5, 0.5).arms_of(users).tolist()
    code = (
        "import json; from tests.experiments.test_assignment import experiment; "
        "print(json.dumps(experiment(0.5, 0.5).arms_of(range(1, 2001)).tolist()))"
    )
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert json.loads(out.stdout) == mine
    # the documented recipe, recomputed by hand: SHA-256 of "salt:user", first 8 bytes big-endian / 2**64
    import hashlib

    assert bucket("s1", 7) == int.from_bytes(hashlib.sha256(b"s1:7").digest()[:8], "big") / 2**64


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.2, 0.3, 0.5), (0.9, 0.1)])
def test_the_split_meets_the_shares_within_a_percentage_point(shares):
    """100,000 users: a share's binomial standard deviation is at most 0.0016, so 0.01 is over 6 of them."""
    names = experiment(*shares).arms_of(range(1, 100_001))
    for index, share in enumerate(shares):
        assert abs(np.mean(names == f"arm{index}") - share) < 0.01, (shares, index)


def test_one_user_and_many_users_agree_and_a_new_salt_reshuffles():
    exp = experiment(0.2, 0.3, 0.5)
    users = range(1, 3001)
    assert [exp.arm_of(u).name for u in users] == exp.arms_of(users).tolist()
    other = experiment(0.2, 0.3, 0.5, salt="s2").arms_of(users)
    assert 0.3 < np.mean(other != exp.arms_of(users)) < 0.8  # independent: about 1 - (0.04 + 0.09 + 0.25)


def test_a_definition_that_cannot_split_traffic_is_refused():
    with pytest.raises(ExperimentError, match="must sum to 1, got 0.9"):
        experiment(0.5, 0.4)
    with pytest.raises(ExperimentError, match="a control and at least one treatment"):
        experiment(1.0)
    again = Experiment.from_json(experiment(0.5, 0.5).to_json())
    assert again == experiment(0.5, 0.5)
