"""How many times one run fetches the base model from S3, and how many bytes, before any
staging and with the run's one staging task (issue 29, item 9).

Counted from the compiled cluster pipelines (every GPU task, a ParallelFor body once per shard) and
the settings (GPUs per training pod, TrainJob nodes), not measured on a cluster. Before, the old
behaviour, assumed per task:

- an inference pod (sample, score, greedy, evaluate, summarize): once, into its own /cache
  (trackrec/llm/base_model.py resolve_model);
- a training task in its own pod on G GPUs: each of its G torchrun ranks found /cache empty at once
  and fetched it (G, or 1 on one GPU);
- a training task as a TrainJob over N nodes of G GPUs: every rank of every node fetched it into the
  shared workspace at once (N x G), and distill's waiting pod once more for the tokenizer.

After, read from the compiled pipeline itself: the staging task (`stage_base`) fetches it once onto
the run's workspace; a GPU task whose `workspace` input is the staging task's output (directly or
through its sub-pipeline's inputs) reads it there and fetches nothing; any other GPU task would
fetch its own (1 per pod). Every GPU pod still reads the base once, from the in-cluster workspace.

    python bench/model_downloads.py [--shards 16] [--base-gb 15.2]   # table; runs/bench/model_downloads/results.json
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import yaml

from components.catalog import STAGES
from pipelines.compile import compile_pipeline
from pipelines.settings import PipelineSettings
from trackrec.config import config_from_dict, load_config
from trackrec.run_config import RunConfig

TRAINING = tuple(name for name, stage in STAGES.items() if stage.trainjob)
STAGING = "stage_base"  # the task that fetches the base onto the run's workspace
SCENARIOS = {  # name -> settings (PipelineSettings as YAML would give it)
    "defaults: 1 GPU per pod": {},
    "training on 8 GPUs in its pod": {"stages": {s: {"gpus": 8} for s in TRAINING}},
    "training as TrainJobs, 4 nodes x 8 GPUs": {"training": {"nodes": 4}, "stages": {s: {"gpus": 8} for s in TRAINING}},
}


def stage_of(component: str) -> str:
    """comp-<stage>[-N] -> the stage's name."""
    return re.sub(r"-\d+$", "", component.removeprefix("comp-")).replace("-", "_")


def pods(pipeline: dict, shards: int) -> list[tuple[str, int, bool]]:
    """(stage, pods one run starts, reads the staged base) for each GPU or staging task: an executor
    task once, a ParallelFor body `shards` times; it reads the staged base when its `workspace` input
    is the staging task's output, directly or through the sub-pipelines' inputs."""
    components, found = pipeline["components"], []

    def walk(tasks: dict, times: int, staged: set[str]) -> None:
        def from_staging(spec: dict) -> bool:
            producer = spec.get("taskOutputParameter", {}).get("producerTask")
            if producer is not None:
                return stage_of(tasks[producer]["componentRef"]["name"]) == STAGING
            return spec.get("componentInputParameter") in staged

        for task in tasks.values():
            component = components[task["componentRef"]["name"]]
            parameters = task.get("inputs", {}).get("parameters", {})
            if "dag" in component:
                inner = {name for name, spec in parameters.items() if from_staging(spec)}
                walk(component["dag"]["tasks"], times * (shards if "parameterIterator" in task else 1), inner)
                continue
            stage = stage_of(task["componentRef"]["name"])
            if STAGES[stage].gpu or stage == STAGING:
                found.append((stage, times, from_staging(parameters.get("workspace", {}))))

    walk(pipeline["root"]["dag"]["tasks"], 1, set())
    return found


def downloads(found: list[tuple[str, int, bool]], settings: PipelineSettings) -> tuple[int, int]:
    """(before, after) fetches of the base from S3 in one run."""
    nodes = settings.training.nodes
    before = after = 0
    for stage, count, staged in found:
        if stage == STAGING:
            after += count
            continue
        gpus = (settings.stages.get(stage) and settings.stages[stage].gpus) or settings.gpu_pool.gpus
        if stage not in TRAINING:
            before += count
        elif nodes == 1:
            before += count * gpus
        else:
            before += count * nodes * gpus + (count if stage == "distill" else 0)
        after += 0 if staged else count  # a GPU task without the staged base fetches its own
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=16, help="user shards of the inference stages")
    parser.add_argument("--config", default="configs/cluster.yaml", help="the run config (T, the base)")
    parser.add_argument(
        "--base-gb", type=float, default=15.2, help="the base's size (Qwen2.5-7B: 7.6e9 parameters x 2 bytes)"
    )
    args = parser.parse_args()
    config = load_config(args.config, RunConfig)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for refresh in (False, True):
            for name, values in SCENARIOS.items():
                if refresh and values:  # the refresh trains nothing: the training settings change nothing
                    continue
                settings = config_from_dict(PipelineSettings, values)
                path = compile_pipeline(config, settings, Path(folder) / "p.yaml", refresh)
                found = pods(next(yaml.safe_load_all(path.read_text())), args.shards)
                before, after = downloads(found, settings)
                run = "refresh (daily)" if refresh else "retrain (weekly)"
                gpu = sum(count for stage, count, _ in found if stage != STAGING)
                rows.append((run, name if not refresh else "any", gpu, before, after))
    print(f"base {config.llm.base}, {args.base_gb:.1f} GB; T={config.llm.iterations}, shards={args.shards}\n")
    header = ("run", "settings", "GPU pods", "fetches before", "TB before", "fetches after", "TB after")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    results = Path("runs/bench/model_downloads")
    results.mkdir(parents=True, exist_ok=True)
    keys = ("run", "settings", "gpu_pods", "fetches_before", "fetches_after")
    summary = {"base": config.llm.base, "base_gb": args.base_gb, "shards": args.shards, "T": config.llm.iterations}
    (results / "results.json").write_text(
        json.dumps(summary | {"rows": [dict(zip(keys, r, strict=True)) for r in rows]}, indent=1)
    )
    for run, name, gpu, before, after in rows:
        cells = (
            run,
            name,
            gpu,
            before,
            f"{before * args.base_gb / 1000:.2f}",
            after,
            f"{after * args.base_gb / 1000:.2f}",
        )
        print(" | ".join(str(cell) for cell in cells))


if __name__ == "__main__":
    main()
