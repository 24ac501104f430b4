"""Training stages on several GPUs of one pod: `torchrun` starts one process per GPU, DeepSpeed
(ZeRO-2/3, `*_train.deepspeed`) shards across them, rank 0 alone writes the stage's output.

The training components call `run_training_stage`; with one GPU (or none) it runs in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GPUS_ENV = "TRACKREC_GPUS"  # set on GPU pods from the settings' GPU count


def pod_gpus() -> int:
    return int(os.environ.get(GPUS_ENV, "1"))


def local_device() -> str:
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def save_adapter(model, folder: str | Path | None) -> None:
    """Write the adapter to `folder` (rank 0; the other ranks pass None). Under ZeRO-3 each rank
    holds a slice of every parameter: all ranks gather the trainable ones, rank 0 writes them whole."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if any(hasattr(p, "ds_id") for p in trainable):  # a ZeRO-3 partitioned parameter
        import deepspeed

        with deepspeed.zero.GatheredParameters(trainable, modifier_rank=None):
            if folder is not None:
                model.save_pretrained(folder)
    elif folder is not None:
        model.save_pretrained(folder)


def run_training_stage(stage: str, arguments: dict) -> None:
    """`align` or `rectune` with JSON-able arguments: in-process on one GPU, else one process per GPU."""
    gpus = pod_gpus()
    if gpus <= 1:
        _call(stage, arguments)
        return
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", "-m", __name__, stage]
    subprocess.run([*command, json.dumps(arguments)], check=True)


def _call(stage: str, arguments: dict) -> None:
    from trackrec.llm.config import LLMConfig
    from trackrec.run_config import section

    llm = section(LLMConfig, arguments.pop("llm"), "llm")
    if stage == "align":
        from trackrec.stages.align import align

        align(llm=llm, **arguments)
    elif stage == "rectune":
        from trackrec.stages.rectune import rectune

        rectune(llm=llm, **arguments)
    else:
        raise ValueError(f"unknown training stage {stage!r}; known: align, rectune")


if __name__ == "__main__":  # one rank of run_training_stage
    _call(sys.argv[1], json.loads(sys.argv[2]))
