"""Fine-tuning G and V with trl: SFT (distillation, Rec-tuning) and S-DPO (alignment).

Sequences are tokenised here, through the chat template, so that training sees exactly the
tokens the engine renders at inference. trl's defaults that fail on a CPU (bf16, gradient
checkpointing) are derived from the hardware instead; a DeepSpeed config passes through.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from trl import DPOConfig, SFTConfig, SFTTrainer

from trackrec.llm import chat
from trackrec.llm.config import TrainingConfig
from trackrec.llm.hf_engine import answer_token_ids
from trackrec.llm.sdpo_trainer import SDPOTrainer


def _hardware_args(config: TrainingConfig, workdir: str) -> dict:
    cuda = torch.cuda.is_available()
    return {
        "output_dir": workdir,
        "num_train_epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        "seed": config.seed,
        "deepspeed": config.deepspeed,
        "use_cpu": not cuda,
        "bf16": cuda and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": cuda,
        "max_length": None,  # prompts are already cut to a token budget
        "save_strategy": "no",
        "report_to": [],
        "logging_steps": 1,
    }


def sft_dataset(tokenizer, prompts: Sequence[str], completions: Sequence[str], answer_only: bool) -> Dataset:
    """Prompt ids + completion ids, loss mask on the completion.

    answer_only (Rec-tuning, eq. 5-6): the completion is the first token of the answer word and the
    loss is on that token alone. Otherwise (distillation) the completion is the text plus eos.
    """
    answer_ids = dict(zip(("Yes", "No"), answer_token_ids(tokenizer), strict=True))
    rows = {"input_ids": [], "completion_mask": []}
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt_ids = chat.prompt_ids(tokenizer, prompt)
        if answer_only:
            completion_ids = [answer_ids[completion]]
        else:
            completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows["input_ids"].append(prompt_ids + completion_ids)
        rows["completion_mask"].append([0] * len(prompt_ids) + [1] * len(completion_ids))
    return Dataset.from_dict(rows)


@contextlib.contextmanager
def _trainer_scope():
    """What a trainer leaves behind in the process is undone when it ends: with DeepSpeed,
    transformers keeps a global ZeRO config (later models would be built partitioned) and
    accelerate sets ACCELERATE_USE_DEEPSPEED in the environment (child processes inherit it)."""
    environment = dict(os.environ)
    try:
        yield
    finally:
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
        os.environ.clear()
        os.environ.update(environment)


def sft(model, tokenizer, dataset: Dataset, config: TrainingConfig) -> list[dict]:
    """Train `model` (a peft model: only its adapter learns) in place; returns trl's log history."""
    with _trainer_scope(), tempfile.TemporaryDirectory() as workdir:  # the trainer's scratch: no checkpoint
        args = SFTConfig(completion_only_loss=True, **_hardware_args(config, workdir))
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    return trainer.state.log_history


def _preference_dataset(rows: list[dict]) -> Dataset:
    """The rows as a Dataset; with several ranks, one file-backed copy they all read. trl caches the
    precomputed reference log-probs beside the dataset's files, and beside an in-memory dataset is
    each process's own temporary folder: rank 1 would look for rank 0's cache in its own."""
    dataset = Dataset.from_list(rows)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return dataset
    from accelerate import PartialState

    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"trackrec-preferences-{digest}"
    state = PartialState()
    with state.main_process_first():
        if state.is_main_process and not folder.exists():
            dataset.save_to_disk(folder)
    return Dataset.load_from_disk(str(folder))


def align(model, tokenizer, rows: list[dict], config: TrainingConfig, beta: float) -> list[dict]:
    """S-DPO on `model` in place over rows {prompt, chosen, rejected: [K]}; the reference is `model` as it
    is now (G(t-1)), its log-probs precomputed before the first step."""
    with _trainer_scope(), tempfile.TemporaryDirectory() as workdir:
        args = DPOConfig(beta=beta, precompute_ref_log_probs=True, **_hardware_args(config, workdir))
        dataset = _preference_dataset(rows)
        trainer = SDPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    return trainer.state.log_history
