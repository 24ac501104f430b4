from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.synthetic import collm_rows, write_collm
from trackrec.data.dataset import DataConfig
from trackrec.stages.prepare_data import prepare_data


@pytest.fixture
def collm_root(tmp_path: Path) -> Path:
    """A small CoLLM-format data folder."""
    return write_collm(tmp_path / "data", collm_rows())


@pytest.fixture
def prepared(collm_root: Path, tmp_path: Path) -> Path:
    """The small dataset, prepared."""
    out = tmp_path / "prepared"
    prepare_data(DataConfig(root=str(collm_root)), out)
    return out


def real_data_root() -> Path:
    return Path(os.environ.get("TRACKREC_DATA_DIR") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data")


@pytest.fixture
def real_data() -> Path:
    root = real_data_root()
    if not (root / "collm-ml1m" / "jsonl" / "train_ood2.jsonl.gz").exists():
        pytest.skip(f"the licensed CoLLM ML-1M files are not under {root} (set TRACKREC_DATA_DIR)")
    return root
