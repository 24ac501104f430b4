"""How many times one run fetches the base model from S3, and how many bytes, before and after
the TrainJob path stages it once per run (issue 29, item 9).

Counted from the compiled pipelines (every GPU task, a ParallelFor body once per shard) and the
settings (GPUs per training pod, TrainJob nodes), not measured on a cluster. Who fetches what:

- an inference pod (sample, score, greedy, evaluate, summarize): once, into its own /cache
  (trackrec/llm/base_model.py resolve_model); unchanged;
- a training task in its own pod on G GPUs: before, each of its G torchrun ranks found /cache empty
  at once and fetched it (G, or 1 on one GPU); after, the task resolves it before torchrun starts (1);
- a training task as a TrainJob over N nodes of G GPUs: before, every rank of every node fetched it
  into the shared workspace at once (N x G), and distill's waiting pod once more for the tokenizer;
  after, the first training task of the run fetches it onto the workspace (distill's waiting pod,
  whose tokenizer read goes there too), and nothing else does: 1 per run.

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
SCENARIOS = {  # name -> settings (PipelineSettings as YAML would give it)
    "defaults: 1 GPU per pod": {},
    "training on 8 GPUs in its pod": {"stages": {s: {"gpus": 8} for s in TRAINING}},
    "training as TrainJobs, 4 nodes x 8 GPUs": {"training": {"nodes": 4}, "stages": {s: {"gpus": 8} for s in TRAINING}},
}


def gpu_pods(pipeline: dict, shards: int) -> dict[str, int]:
    """GPU stage -> pods one run starts: each executor task once, a ParallelFor body `shards` times."""
    components, pods = pipeline["components"], {}

    def walk(tasks: dict, times: int) -> None:
        for task in tasks.values():
            component = components[task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"]["tasks"], times * (shards if "parameterIterator" in task else 1))
                continue
            stage = re.sub(r"-\d+$", "", task["componentRef"]["name"].removeprefix("comp-")).replace("-", "_")
            if STAGES[stage].gpu:
                pods[stage] = pods.get(stage, 0) + times

    walk(pipeline["root"]["dag"]["tasks"], 1)
    return pods


def downloads(pods: dict[str, int], settings: PipelineSettings) -> tuple[int, int]:
    """(before, after) fetches of the base in one run."""
    nodes = settings.training.nodes
    before = after = 0
    for stage, count in pods.items():
        gpus = (settings.stages.get(stage) and settings.stages[stage].gpus) or settings.gpu_pool.gpus
        if stage not in TRAINING:
            before, after = before + count, after + count
        elif nodes == 1:
            before, after = before + count * gpus, after + count
        else:
            before += count * nodes * gpus + (count if stage == "distill" else 0)
    if nodes > 1 and any(stage in TRAINING for stage in pods):
        after += 1
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
                pods = gpu_pods(next(yaml.safe_load_all(path.read_text())), args.shards)
                before, after = downloads(pods, settings)
                run = "refresh (daily)" if refresh else "retrain (weekly)"
                rows.append((run, name if not refresh else "any", sum(pods.values()), before, after))
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
    for run, name, pods, before, after in rows:
        cells = (
            run,
            name,
            pods,
            before,
            f"{before * args.base_gb / 1000:.2f}",
            after,
            f"{after * args.base_gb / 1000:.2f}",
        )
        print(" | ".join(str(cell) for cell in cells))


if __name__ == "__main__":
    main()
