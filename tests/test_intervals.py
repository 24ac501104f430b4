"""Bootstrap intervals over users, and the report's caveats on V's AUC."""

import numpy as np
import pytest

from trackrec.intervals import auc_difference, auc_of, bootstrap, like_rate
from trackrec.llm.report import caveats


def test_a_perfect_score_has_a_degenerate_interval_and_a_random_one_spans_chance():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    users = np.arange(400)
    perfect = bootstrap(auc_of(labels, labels + 0.0), users)
    assert perfect == {"estimate": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    noise = bootstrap(auc_of(labels, rng.random(400)), users)
    assert noise["ci_low"] < 0.5 < noise["ci_high"]


def test_users_are_resampled_whole_so_copies_of_a_sample_do_not_narrow_the_interval():
    rng = np.random.default_rng(1)
    labels, scores = rng.integers(0, 2, 200), rng.random(200)
    one_each = bootstrap(auc_of(labels, scores), np.arange(200))
    copies = bootstrap(auc_of(np.repeat(labels, 5), np.repeat(scores, 5)), np.repeat(np.arange(200), 5))
    assert copies["ci_high"] - copies["ci_low"] == pytest.approx(one_each["ci_high"] - one_each["ci_low"], abs=1e-9)
    per_sample = bootstrap(auc_of(np.repeat(labels, 5), np.repeat(scores, 5)), np.arange(1000))
    assert per_sample["ci_high"] - per_sample["ci_low"] < 0.6 * (one_each["ci_high"] - one_each["ci_low"])


def test_a_paired_difference_of_a_score_with_itself_is_exactly_zero():
    rng = np.random.default_rng(2)
    labels, scores = rng.integers(0, 2, 100), rng.random(100)
    assert bootstrap(auc_difference(labels, scores, scores), np.arange(100)) == {
        "estimate": 0.0,
        "ci_low": 0.0,
        "ci_high": 0.0,
    }


def test_like_rate_of_an_empty_history_is_even():
    assert like_rate([[1, 0, 1, 1], []]).tolist() == [0.75, 0.5]


def test_the_report_says_why_a_validator_below_chance_or_the_prior_is_not_to_be_trusted():
    row = {"iteration": 0, "auc": 0.40, "auc_low": 0.25, "auc_high": 0.55, "prior_auc": 0.70, "users": 48}
    notes = caveats([row])
    assert any("includes chance: 48 held-out users are too few" in n for n in notes)
    assert any("below the like-rate prior's 0.700" in n for n in notes)
    assert any("below chance with its whole interval" in n for n in caveats([row | {"auc_high": 0.45}]))
    assert caveats([row | {"auc": 0.8, "auc_low": 0.75, "auc_high": 0.85}]) == []
