"""Compile the pipeline for a run config's shape and a cluster's settings; read its parameters."""

import json
from pathlib import Path

import yaml
from kfp import compiler

from pipelines.settings import PipelineSettings
from pipelines.trackrec_pipeline import build_pipeline
from trackrec.config import config_from_dict, config_to_dict
from trackrec.errors import ConfigError
from trackrec.reach import ENV as REACH_ENV
from trackrec.reach import Reach
from trackrec.reach import problems as reach_problems
from trackrec.run_config import RunConfig

COMPILED = Path(__file__).with_name("trackrec.yaml")  # checked in: compiled from configs/cluster.yaml
COMPILED_REFRESH = Path(__file__).with_name("trackrec-refresh.yaml")  # the same, --refresh


def compile_pipeline(config: RunConfig, settings: PipelineSettings, output: str | Path, refresh: bool = False) -> Path:
    """Write the pipeline YAML; `config` is both its shape (T, features) and its default `config`
    parameter. refresh: the refresh pipeline (trackrec_pipeline.build_pipeline)."""
    iterations = None if config.llm is None else config.llm.iterations
    default = json.dumps(config_to_dict(config), sort_keys=True)
    pipeline = build_pipeline(iterations, config.features is not None, settings, default, refresh)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(output))
    return output


# KFP's parameter types -> how a command-line value is read
_READERS = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": lambda v: v.lower() == "true"}


def _pipeline_spec(package: str | Path) -> dict:
    """A compiled pipeline's spec: the YAML's first document (the second is its platform spec)."""
    return next(yaml.safe_load_all(Path(package).read_text()))


def pipeline_parameters(package: str | Path) -> dict[str, str]:
    """name -> KFP parameter type of a compiled pipeline's inputs."""
    inputs = _pipeline_spec(package)["root"].get("inputDefinitions", {}).get("parameters", {})
    return {name: value["parameterType"] for name, value in inputs.items()}


def pipeline_name(package: str | Path) -> str:
    """The name a compiled pipeline is uploaded to KFP under (trackrec or trackrec-refresh)."""
    return _pipeline_spec(package)["pipelineInfo"]["name"]


def package_reach(package: str | Path) -> Reach | None:
    """The Reach compiled into a pipeline (its first task's environment), if any."""
    for executor in _pipeline_spec(package)["deploymentSpec"]["executors"].values():
        for variable in executor.get("container", {}).get("env", []):
            if variable["name"] == REACH_ENV:
                return config_from_dict(Reach, json.loads(variable["value"]), REACH_ENV)
    return None


def parse_parameters(package: str | Path, assignments: list[str]) -> dict:
    """`name=value` strings -> typed run parameters; unknown names, bad values and a shard count
    below 1 are reported together."""
    known = pipeline_parameters(package)
    params, problems = {}, []
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep:
            problems.append(f"{assignment!r}: expected name=value")
        elif name not in known:
            problems.append(f"{name}: unknown parameter (known: {sorted(known)})")
        else:
            try:
                params[name] = _READERS[known[name]](value)
            except ValueError:
                problems.append(f"{name}: {value!r} is not a {known[name].lower()}")
    if "config" in params and (reach := package_reach(package)) is not None:
        try:
            plain = config_to_dict(config_from_dict(RunConfig, json.loads(params["config"]), "config"))
            problems += [f"config: {problem}" for problem in reach_problems(plain, reach)]
        except ValueError:
            problems.append("config: not JSON")
        except ConfigError as error:
            problems += error.problems
    for name in ("shards", "active_within_days"):
        minimum = 1 if name == "shards" else 0
        if name in params and params[name] < minimum:
            problems.append(f"{name}: must be >= {minimum}, got {params[name]}")
    if problems:
        raise ConfigError(str(package), problems)
    return params
