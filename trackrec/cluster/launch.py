"""Where a training stage runs: in the task's pod, on one GPU or one process per GPU (`torchrun`),
or, when the settings ask for more than one node, as a Kubeflow Trainer TrainJob that the task
creates and waits for (trackrec/cluster/trainjob.py). Each way runs the same Job."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from trackrec.cluster.job import RANK, Job
from trackrec.cluster.trainjob import Nodes, run_on_trainjob
from trackrec.llm.base_model import cache_root, stage_base
from trackrec.llm.distributed import pod_gpus


def train(
    stage: Callable,
    inputs: dict[str, str | None],
    llm: str,
    output: str,
    nodes: str = "",
    workspace: str = "",
    task_config=None,
    withheld: tuple[str, ...] = (),
) -> None:
    """Run the training stage function `stage(**inputs, llm=..., output=output)`. nodes: the
    compiled Nodes (JSON; empty: this pod); workspace, task_config: what KFP gives a task with the
    task-config passthrough; withheld: environment variables of the task a TrainJob's nodes must not
    get (the teacher's key)."""
    job = Job.of(stage, inputs, llm, output)
    if nodes:
        run_on_trainjob(job, Nodes.from_json(nodes), Path(workspace), task_config, withheld=withheld)
        return
    gpus = pod_gpus()
    if gpus <= 1:
        job.run()
        return
    stage_base(llm, cache_root())  # once, before the ranks (each would fetch it at once)
    with tempfile.TemporaryDirectory(prefix="trackrec-job-") as folder:
        path = job.save(Path(folder) / "job.json")
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", *RANK, str(path)]
        subprocess.run(command, check=True)
