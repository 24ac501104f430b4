"""The body of every fake stage (tests/pipeline_fakes.py), run in its task's process: no KFP, no
pipeline imports."""

from __future__ import annotations

import json
from pathlib import Path


def act(stage: str, arguments: dict) -> None:
    """A fake stage's body: each output is a file naming the task that wrote it (the output's folder
    is the task's; a shard's task with its shard: `greedy#1`) and, for each input, the task that made
    it (artifacts) or its value (parameters)."""
    outputs = {k: v for k, v in arguments.items() if hasattr(v, "path") and not Path(v.path).exists()}
    task = Path(next(iter(outputs.values())).path).parent.name
    task += f"#{arguments['shard']}" if "shard" in arguments else ""  # a ParallelFor's tasks share a name
    read = {k: _made_by(v) for k, v in arguments.items() if k not in outputs}
    for name, artifact in outputs.items():
        Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
        made = {"stage": stage, "task": task, "output": name, "inputs": read}
        Path(artifact.path).write_text(json.dumps(made, default=lambda value: type(value).__name__))


def made_by(path: str | Path) -> dict:
    """What a fake wrote at an output: its stage, task, output name and inputs."""
    return json.loads(Path(path).read_text())


def _made_by(value):
    if isinstance(value, list):  # a ParallelFor's collected outputs
        return [_made_by(v) for v in value]
    if hasattr(value, "path"):  # an input artifact: an optional one not given has no file
        return made_by(value.path)["task"] if Path(value.path).is_file() else None
    return value
