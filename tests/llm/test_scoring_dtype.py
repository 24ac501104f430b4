"""The reward is computed in float32 on every device: bfloat16 rounds V's Yes/No probabilities by about
as much as the reward differences that alignment ranks. Checked on a CPU by what each engine asks
for when CUDA is reported: the HF engine's from_pretrained dtype, vLLM's engine dtype."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest
import torch

from trackrec.config import config_from_dict
from trackrec.llm import adapters
from trackrec.llm.config import LLMConfig
from trackrec.stages.llm_common import open_engine, validator_probs


class Asked(Exception):
    """Raised by the stand-in loader once it has recorded what it was asked for."""


@pytest.fixture
def on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    asked = {}

    def from_pretrained(source, **kwargs):
        asked.update(kwargs)
        raise Asked

    monkeypatch.setattr(adapters.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    return asked


def llm_config(base, engine="hf") -> LLMConfig:
    return config_from_dict(LLMConfig, {"base": str(base), "engine": engine})


def sample_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {"history_titles": [["A (1990)"]], "history_labels": [[1]], "history_ratings": [None], "target_title": ["B"]}
    )


def test_the_hf_reward_path_loads_float32_on_a_gpu_and_generation_bfloat16(tiny_lm_dir, on_cuda):
    llm = llm_config(tiny_lm_dir)
    with pytest.raises(Asked):
        validator_probs(llm, None, sample_rows(), ["a summary"], "test", progress=False)
    assert on_cuda["dtype"] is torch.float32
    with pytest.raises(Asked):
        open_engine(llm, None, progress=False)  # sampling and greedy decoding
    assert on_cuda["dtype"] is torch.bfloat16


def test_the_vllm_reward_path_asks_for_float32_on_a_gpu(tiny_lm_dir, on_cuda, monkeypatch):
    fake = types.ModuleType("vllm")

    def engine(**kwargs):
        on_cuda.update(kwargs)
        raise Asked

    fake.LLM = engine
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = object
    for name, module in {"vllm": fake, "vllm.lora": types.ModuleType("vllm.lora"), "vllm.lora.request": lora}.items():
        monkeypatch.setitem(sys.modules, name, module)
    llm = llm_config(tiny_lm_dir, engine="vllm")
    with pytest.raises(Asked):
        validator_probs(llm, None, sample_rows(), ["a summary"], "test", progress=False)
    assert on_cuda["dtype"] == "float32"
    on_cuda.clear()
    with pytest.raises(Asked):
        open_engine(llm, None, progress=False)
    assert "dtype" not in on_cuda  # the model's own (bfloat16) for generation
