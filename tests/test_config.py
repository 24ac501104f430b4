from pathlib import Path

import pytest

from trackrec.config import load_config
from trackrec.errors import ConfigError
from trackrec.run import RunConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    load_config(path, RunConfig)


def test_every_problem_is_listed_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "run_dir: 3\ndata:\n  history: some\n  colour: red\nctr:\n  backbone: dinn\n  train:\n    batch_size: big\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, RunConfig)
    message = str(info.value)
    for expected in (
        "run_dir: expected str, got 3",
        "data.history: 'some' is not one of ['full', 'liked']",
        "data.colour: unknown key",
        "ctr.train.batch_size: expected int, got 'big'",
    ):
        assert expected in message
    assert str(path) in message


def test_cross_field_problem_is_located(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("ctr:\n  backbone: dinn\n  model:\n    dropout: 1.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, RunConfig)
    assert "ctr.model: dropout: must be in [0, 1), got 1.5" in str(info.value)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"(?s)broken\.yaml.*not valid YAML"):
        load_config(path, RunConfig)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "none.yaml", RunConfig)
