"""Typed configs: dataclasses loaded from YAML, checked field by field, every problem reported at once.

Each config is a dataclass deriving from `Config`; fields carry `metadata={"help": ..., "range": ...}`
(a number outside its field's `Range`, and any NaN or infinite float, is refused on construction)
and `problems()` returns cross-field complaints. `load_config(path, cls)` reads YAML, rejects unknown
keys and wrong types, and raises one ConfigError listing everything that is wrong.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from trackrec.errors import ConfigError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Range:
    """Where a number (or each number of a list) must lie; NaN, the infinities and ints beyond int64
    lie nowhere."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is outside
    high_open: bool = False

    def _above(self, value: float) -> bool:
        return self.low is None or (value > self.low if self.low_open else value >= self.low)

    def _below(self, value: float) -> bool:
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def outside(self, value: float) -> str | None:
        """What `value` breaks ("must be >= 1"), or None where it lies inside. Written so that NaN
        fails every comparison, and a huge int is never turned into a float."""
        low = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low}"
        high = None if self.high is None else f"{'<' if self.high_open else '<='} {self.high}"
        if isinstance(value, float) and not math.isfinite(value):
            return " and ".join(["a finite number", *filter(None, (low, high))])
        if isinstance(value, int) and not -(2**63) <= value < 2**63:  # numpy, torch and parquet take int64
            return "a 64-bit integer"
        if not self._above(value):
            return low
        return None if self._below(value) else high


PROBABILITY = Range(0, 1)
SEED = Range(0, 2**32 - 1)  # what numpy's and torch's seeding both take
TTL_DAYS = Range(1, 36_500)  # a snapshot's time to live: a day to a century


def field(
    default: Any = dataclasses.MISSING, help: str = "", factory: Any = dataclasses.MISSING, range: Range | None = None
) -> Any:
    """A dataclass field with trl-style `help` metadata; `factory` builds nested configs; `range`: where
    a number must lie (None: anywhere finite)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or a factory for container defaults")
    return dataclasses.field(default=default, default_factory=factory, metadata={"help": help, "range": range})


def _numbers(value: Any) -> list:
    """The numbers in a field's value: itself, or each item of a list (bools are not numbers)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def number_problems(config: Any) -> list[str]:
    """One problem for each numeric field of a dataclass outside its field's range, or not finite."""
    found = []
    for f in dataclasses.fields(config):
        bounds = f.metadata.get("range") or Range()
        for number in _numbers(getattr(config, f.name)):
            broken = bounds.outside(number)
            if broken is not None:
                found.append(f"{f.name}: must be {broken}, got {number}")
    return found


@dataclasses.dataclass
class Config:
    def problems(self) -> list[str]:
        """Cross-field checks; each entry says what was found and what is expected."""
        return []

    def at_least(self, minimum: int, *names: str) -> list[str]:
        """One problem for each named field below `minimum`."""
        return [f"{n}: must be >= {minimum}, got {getattr(self, n)}" for n in names if getattr(self, n) < minimum]

    def positive(self, *names: str) -> list[str]:
        """One problem for each named field that is not > 0."""
        return [f"{n}: must be > 0, got {getattr(self, n)}" for n in names if getattr(self, n) <= 0]

    def __post_init__(self) -> None:
        problems = number_problems(self)
        problems += [] if problems else self.problems()  # cross-field checks read in-range numbers
        if problems:
            raise ConfigError(type(self).__name__, problems)


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    """Convert a YAML value to `tp`, appending a problem and returning None when it does not fit."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where, problems)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            problems.append(f"{where}: {value!r} is not one of {list(allowed)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where}: expected a list, got {value!r}")
            return None
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return tuple(_convert(v, item_tp, f"{where}[{i}]", problems) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping, got {value!r}")
            return None
        _, value_tp = typing.get_args(tp)
        return {str(k): _convert(v, value_tp, f"{where}.{k}", problems) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
            return None
        return _build(tp, value, where, problems)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            problems.append(f"{where}: {value!r} is not one of {[m.value for m in tp]}")
            return None
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        problems.append(f"{where}: expected {_describe(tp)}, got {value!r} ({type(value).__name__})")
        return None
    return value


def _build(cls: type[C], raw: dict, where: str, problems: list[str]) -> C | None:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in raw:
        if key not in fields:
            problems.append(f"{where}.{key}: unknown key (known: {sorted(fields)})".lstrip("."))
    kwargs = {}
    before = len(problems)
    for name in fields:
        if name in raw:
            kwargs[name] = _convert(raw[name], hints[name], f"{where}.{name}".lstrip("."), problems)
    if len(problems) > before:
        return None
    try:
        return cls(**kwargs)
    except ConfigError as e:
        problems.extend(f"{where}: {p}".lstrip(": ") if where else p for p in e.problems)
    except TypeError as e:
        problems.append(f"{where or cls.__name__}: {e}")
    return None


def config_from_dict(cls: type[C], raw: dict, source: str = "<dict>") -> C:
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"expected a mapping at the top level, got {type(raw).__name__}"])
    built = _build(cls, raw, "", problems)
    if problems or built is None:
        raise ConfigError(source, problems)
    return built


def read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(str(path), ["file not found"])
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(str(path), [f"not valid YAML: {e}"]) from e


def merged(base: Any, override: Any) -> Any:
    """`override` deep-merged onto `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: merged(base[k], v) if k in base else v for k, v in override.items()}}
    return override


def load_config(path: str | os.PathLike, cls: type[C], overrides: str | os.PathLike | None = None) -> C:
    """`path`'s config, with the YAML mapping in `overrides` (if any) deep-merged onto it."""
    path = Path(path)
    raw = read_yaml(path)
    source = str(path)
    if overrides is not None:
        raw = merged(raw, read_yaml(Path(overrides)))
        source = f"{path} + {overrides}"
    return config_from_dict(cls, raw, source)


def config_to_dict(config: Config) -> dict:
    """Plain YAML-able dict (enums as their values, tuples as lists)."""

    def plain(value):
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))
