"""What a training process needs to know of its place among several (GPUs of one pod, or nodes of a
TrainJob: trackrec/cluster/launch.py): its device, whether it is rank 0, and how to save an adapter
that DeepSpeed (ZeRO-2/3, `*_train.deepspeed`) sharded across all of them; rank 0 alone writes."""

from __future__ import annotations

import os
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
