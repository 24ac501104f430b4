"""G and V over one frozen base: load, create, continue. A trained V or G is a LoRA adapter folder
(peft's adapter_config.json + weights), or, where its stage trains every weight
(`*_train.full_finetune`), a whole model folder (config.json + weights).

The base travels by reference (see base_model.resolve_model).
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from trackrec.errors import ConfigError
from trackrec.llm.base_model import resolve_model
from trackrec.llm.config import LoRAConfig
from trackrec.llm.distributed import local_device
from trackrec.llm.hf_engine import with_pad_token
from trackrec.timing import loading


def load_tokenizer(base: str):
    return with_pad_token(AutoTokenizer.from_pretrained(resolve_model(base)))


def is_full_model(folder: str | Path) -> bool:
    """A folder a full fine-tuning wrote: a whole model, not an adapter over the base."""
    folder = Path(folder)
    return (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file()


def weights_dtype(cuda: bool, scoring: bool) -> torch.dtype:
    """float32 wherever a reward or an AUC is computed: bfloat16 rounds a 135M model's Yes/No
    probabilities by 0.01-0.02, the size of the reward differences being ranked. Training and
    generation keep bfloat16 on a GPU."""
    return torch.bfloat16 if cuda and not scoring else torch.float32


@loading()  # a task's start-up counts it apart from its imports
def load_model(
    base: str,
    adapter: str | Path | None = None,
    lora: LoRAConfig | None = None,
    trainable: bool = False,
    full: bool = False,
    scoring: bool = False,
):
    """The base with `adapter` on it (a full model folder loads in its place); with no adapter and
    trainable, a fresh LoRA adapter from `lora`, or every weight trainable when `full`."""
    cuda = torch.cuda.is_available()
    whole = adapter is not None and is_full_model(adapter)
    model = AutoModelForCausalLM.from_pretrained(
        str(adapter) if whole else resolve_model(base),
        dtype=weights_dtype(cuda, scoring),
        device_map=local_device() if cuda else None,
    )
    if whole:
        return model.requires_grad_(trainable)
    if adapter is not None:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ConfigError("adapter", [f"{adapter}: not a LoRA adapter nor a model folder (no adapter_config.json)"])
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    if trainable and full:
        return model
    if trainable:
        lora = lora or LoRAConfig()
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            layers_to_transform=lora.layers,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, peft_config)
    return model
