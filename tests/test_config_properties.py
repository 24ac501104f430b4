"""Every numeric setting of the run config, given any number (NaN, the infinities, zero, negatives,
huge ints, fractions), through the typed loader (YAML) and through the first task (JSON): a value
that makes no sense for what the field means is refused, naming the field; one accepted is finite,
fits int64 and means something. The oracle below is written from what each setting means, not from
the ranges in the configs."""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from trackrec.config import config_from_dict, load_config
from trackrec.errors import ConfigError
from trackrec.run_config import RunConfig, split_sections

FAST = settings(max_examples=300, deadline=None)


def numeric_paths(cls, prefix: str = "") -> list[tuple[str, type]]:
    """(dotted path, int or float) of every numeric field under `cls`, lists of numbers included."""
    found = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kinds = [hints[f.name]]
        while kinds:
            kind = kinds.pop()
            args = typing.get_args(kind)
            if dataclasses.is_dataclass(kind):
                found += numeric_paths(kind, f"{prefix}{f.name}.")
            elif kind in (int, float):
                found.append((f"{prefix}{f.name}", kind))
            elif args and typing.get_origin(kind) is not typing.Literal:
                kinds += [a for a in args if a is not type(None) and a is not Ellipsis]
    return found


PATHS = numeric_paths(RunConfig)
# what each setting means, by its path's end or its name: (lowest, highest, lowest allowed?, highest allowed?)
MEANING = {
    "lr": (0, None, False, True),
    "learning_rate": (0, None, False, True),
    "beta": (0, None, False, True),
    "epochs": (0, None, False, True),
    "timeout_s": (0, None, False, True),
    "generation.temperature": (0, None, False, True),  # sampling at 0 is no sampling
    "temperature": (0, None, True, True),
    "max_retries": (0, None, True, True),
    "dropout": (0, 1, True, False),
    "top_p": (0, 1, False, True),
    "gpu_memory_utilization": (0, 1, False, True),
    "max_drop": (0, 1, True, True),
    "distill_fraction": (0, 1, True, True),
    "weight_decay": (0, None, True, True),
    "seed": (0, 2**32 - 1, True, True),
    "samples": (2, None, True, True),  # a preference needs two
}
AT_LEAST_ONE = {
    "max_tokens", "max_new_tokens", "batch_size", "gradient_accumulation", "r", "alpha", "iterations",
    "concurrency", "history_len", "max_history", "embedding_dim", "patience", "max_epochs", "dim",
    "ttl_days", "keep_versions", "users", "every_days", "history_tokens", "hidden_units", "max_lora_rank",
}  # fmt: skip


def meaning(path: str):
    name = path.rsplit(".", 1)[-1]
    if name in AT_LEAST_ONE:
        return (1, None, True, True)
    return MEANING.get(".".join(path.split(".")[-2:])) or MEANING.get(name)


def means_something(path: str, value) -> bool:
    """Finite, within int64, and (where the setting has a meaning above) within it."""
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and abs(value) >= 2**63:
        return False
    low, high, low_in, high_in = meaning(path) or (None, None, True, True)
    above = low is None or (value >= low if low_in else value > low)
    return above and (high is None or (value <= high if high_in else value < high))


def raw_with(path: str, value) -> dict:
    raw: dict = {"llm": {"teacher": {"kind": "profile"}}} if path.startswith(("llm.", "features.")) else {}
    node = raw
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = [value] if leaf in ("hidden_units", "layers", "connector_hidden", "attention_hidden") else value
    return raw


def read_back(config, path: str):
    node = config
    for key in path.split("."):
        node = getattr(node, key)
    return node[0] if isinstance(node, tuple) else node


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e-300, 1e300]),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2, 2**32, 2**63, -(2**63) - 1]),
)


def test_the_walk_finds_the_settings_the_issue_names():
    names = {p.rsplit(".", 1)[-1] for p, _ in PATHS}
    for name in ("learning_rate", "lr", "beta", "temperature", "timeout_s", "max_retries", "max_tokens", "r"):
        assert name in names
    assert len(PATHS) > 60


@FAST
@given(where=st.sampled_from(PATHS), value=NUMBERS)
def test_every_number_through_the_typed_loader_is_refused_by_name_or_means_something(where, value, tmp_path_factory):
    path, kind = where
    name = path.rsplit(".", 1)[-1]
    file = tmp_path_factory.mktemp("config") / "run.yaml"
    file.write_text(yaml.safe_dump(raw_with(path, value)))
    try:
        config = load_config(file, RunConfig)
    except ConfigError as refused:
        assert name in str(refused)
        typed = float(value) if kind is float and isinstance(value, int) else value
        if meaning(path) and isinstance(typed, kind) and -1 <= typed <= 1:  # a plain value: refused only if meaningless
            assert not means_something(path, typed), f"{path}={value!r} refused: {refused}"
        return
    assert means_something(path, read_back(config, path)), f"{path}={value!r} accepted"


@FAST
@given(where=st.sampled_from(PATHS), value=NUMBERS)
def test_the_first_tasks_json_refuses_what_the_loader_refuses(where, value):
    path, _ = where
    raw = raw_with(path, value)
    text = json.dumps(raw)  # Python writes NaN and Infinity, as a hand-edited parameter may hold them
    try:
        expected = config_from_dict(RunConfig, raw)
    except ConfigError:
        expected = None
    iterations = expected.llm.iterations if expected is not None and expected.llm else 0
    try:
        split_sections(text, iterations, expected is not None and expected.features is not None)
    except ConfigError as refused:
        assert expected is None and path.rsplit(".", 1)[-1] in str(refused)
        return
    assert expected is not None and means_something(path, read_back(expected, path))


@pytest.mark.parametrize(
    "path,value,said",
    [
        ("llm.distill_train.learning_rate", math.nan, "learning_rate: must be a finite number"),
        ("llm.beta", math.inf, "beta: must be a finite number"),
        ("llm.teacher.temperature", -0.5, "temperature: must be >= 0, got -0.5"),
        ("llm.teacher.timeout_s", 0, "timeout_s: must be > 0, got 0.0"),
        ("llm.teacher.max_retries", -1, "max_retries: must be >= 0, got -1"),
        ("llm.teacher.max_tokens", 0, "max_tokens: must be >= 1, got 0"),
        ("llm.lora.alpha", 0, "alpha: must be >= 1, got 0"),
        ("llm.lora.dropout", 1.0, "dropout: must be < 1, got 1.0"),
        ("llm.rectune_train.epochs", -2, "epochs: must be > 0, got -2.0"),
        ("ctr.train.batch_size", 2**64, "batch_size: must be a 64-bit integer"),
        ("ctr.model.hidden_units", 0, "hidden_units: must be >= 1, got 0"),
    ],
)
def test_the_numbers_the_issue_tried_are_refused_with_the_field_and_its_value(path, value, said):
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
        config_from_dict(RunConfig, raw_with(path, value))
