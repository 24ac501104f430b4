"""`trackrec run`: the pipeline on this machine through `kfp.local`'s SubprocessRunner.

The same pipeline as on a cluster; here the artifact root is a local folder (the runner would
write a literal `s3:/` folder for an S3 root), base images are ignored (the stages run in this
Python), the Kubernetes settings have nothing to act on, and KFP's local cache skips every task
whose inputs are unchanged since an earlier run.
"""

import json
from pathlib import Path

from kfp import local

from pipelines.settings import PipelineSettings
from pipelines.trackrec_pipeline import build_pipeline
from trackrec.config import config_to_dict
from trackrec.errors import DataError
from trackrec.run_config import RunConfig
from trackrec.stages.llm_config import check_context

INDEX = "latest.json"


def run_local(config: RunConfig, shards: int = 1, active_within_days: int = 0) -> dict:
    """Run the whole pipeline; returns the CTR test metrics and the paths of the run's results,
    also written to `<run_dir>/latest.json`. Artifacts land in `<run_dir>/artifacts/<run>/<task>/`
    (a task answered from the cache keeps the folder of the run that computed it), the cache in
    `<run_dir>/cache`."""
    if config.llm is not None:
        check_context(config.llm)  # before any task: a wrong model or budget fails in a second
    run_dir = Path(config.run_dir).resolve()
    root = run_dir / "artifacts"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        enable_caching=True,
        cache_root=str(run_dir / "cache"),
    )
    iterations = None if config.llm is None else config.llm.iterations
    pipeline = build_pipeline(iterations, config.features is not None, PipelineSettings(pipeline_root=str(root)))
    result = pipeline(config=json.dumps(config_to_dict(config)), shards=shards, active_within_days=active_within_days)
    paths = {name: artifact.path for name, artifact in result.outputs.items()}
    (run_dir / INDEX).write_text(json.dumps(paths, indent=2))
    return {"ctr": result.outputs["ctr"].metadata, "paths": paths}


def latest_run(run_dir: str | Path) -> dict[str, Path]:
    """The result paths of the last local run in `run_dir`."""
    index = Path(run_dir) / INDEX
    if not index.is_file():
        raise DataError(str(index), "no finished local run here; run `trackrec run` first")
    return {name: Path(path) for name, path in json.loads(index.read_text()).items()}
