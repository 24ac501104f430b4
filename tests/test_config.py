from pathlib import Path

import pytest

from trackrec.config import load_config
from trackrec.errors import ConfigError
from trackrec.run_config import RunConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    load_config(path, RunConfig)


def test_every_problem_is_listed_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "data:\n  max_history: many\n  history: some\n  colour: red\n"
        "ctr:\n  backbone: dinn\n  train:\n    batch_size: big\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, RunConfig)
    message = str(info.value)
    for expected in (
        "data.max_history: expected int, got 'many'",
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
    assert "ctr.model: dropout: must be < 1, got 1.5" in str(info.value)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"(?s)broken\.yaml.*not valid YAML"):
        load_config(path, RunConfig)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "none.yaml", RunConfig)


def test_range_checks_name_each_field_and_its_value(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("ctr:\n  train:\n    lr: 0\n    patience: -1\nllm:\n  beta: 0\n  iterations: 0\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, RunConfig)
    for expected in (
        "ctr.train: lr: must be > 0, got 0.0",
        "ctr.train: patience: must be >= 1, got -1",
        "llm: beta: must be > 0, got 0.0",
        "llm: iterations: must be >= 1, got 0",
    ):
        assert expected in str(error.value)
    path.write_text("ctr:\n  history_len: 0\n")
    with pytest.raises(ConfigError, match="history_len: must be >= 1, got 0"):
        load_config(path, RunConfig)
