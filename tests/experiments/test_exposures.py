"""The exposure log's schema: bad rows refused in one line naming the file, row and column."""

from __future__ import annotations

import pytest

from tests.experiments.world import exposures
from trackrec.errors import DataError
from trackrec.experiments import exposures as exposure_log

SHARES = {"arm0": 0.5, "arm1": 0.5}


def small():
    return exposures({"arm0": (0.2, 0.5), "arm1": (0.2, 0.5)}, SHARES, users=20)


def test_a_conversion_without_a_click_is_refused_with_its_row(tmp_path):
    log = small()
    row = int((log.click == 0).to_numpy().nonzero()[0][3])
    log.loc[row, "conversion"] = 1
    log.to_parquet(tmp_path / "e.parquet")
    with pytest.raises(DataError, match=rf"e\.parquet, row {row}, field 'conversion': a conversion without a click"):
        exposure_log.read(tmp_path / "e.parquet")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda log: log.drop(columns="arm"), r"field 'arm': missing column"),
        (lambda log: log.assign(impression_id="same"), r"row 1, field 'impression_id': repeats impression 'same'"),
        (lambda log: log.assign(p_click=1.5), r"row 0, field 'p_click': must be a number in \[0.0, 1.0\]"),
        (lambda log: log.assign(click=2), r"row 0, field 'click': must be 0 or 1, got 2"),
        (lambda log: log.assign(user_id=-1), r"row 0, field 'user_id': must be a whole number >= 0"),
    ],
)
def test_bad_input_is_named(change, message):
    with pytest.raises(DataError, match=message):
        exposure_log.checked(change(small()), "exposures")
    assert "\n" not in str(pytest.raises(DataError, exposure_log.checked, change(small()), "x").value)


def test_a_written_log_reads_back_the_same(tmp_path):
    log = exposure_log.checked(small(), "exposures")
    assert exposure_log.read(exposure_log.write(log, tmp_path / "e.parquet")).equals(log)
