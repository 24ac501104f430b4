"""G and V as LoRA adapters over one frozen base: load, create, continue.

An adapter folder (peft's adapter_config.json + weights) is the artifact of every training stage;
the base travels by reference (see base_model.resolve_model).
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


def load_tokenizer(base: str):
    return with_pad_token(AutoTokenizer.from_pretrained(resolve_model(base)))


def load_model(base: str, adapter: str | Path | None = None, lora: LoRAConfig | None = None, trainable: bool = False):
    """The base with `adapter` on it; with no adapter and trainable, a fresh LoRA adapter from `lora`."""
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model(base),
        dtype=torch.bfloat16 if cuda else torch.float32,
        device_map=local_device() if cuda else None,
    )
    if adapter is not None:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ConfigError("adapter", [f"{adapter}: not a LoRA adapter folder (no adapter_config.json)"])
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
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
