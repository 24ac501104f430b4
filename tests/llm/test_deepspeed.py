"""DeepSpeed ZeRO-2 and ZeRO-3 (configs/deepspeed/) through the trainers the stages use, on
DeepSpeed's CPU accelerator in one process with RANK/WORLD_SIZE set: the GPU path's code, run here."""

import os

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("deepspeed", reason="deepspeed comes with the dev extra")

from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled  # noqa: E402

from tests.conftest import free_port  # noqa: E402
from trackrec.llm.adapters import load_model, load_tokenizer  # noqa: E402
from trackrec.llm.config import LoRAConfig, TrainingConfig  # noqa: E402
from trackrec.llm.training import align, sft, sft_dataset  # noqa: E402


@pytest.fixture
def one_process_world(monkeypatch):
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")


def trainable(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_sft_trains_the_adapter_and_saves_it_whole(stage, tiny_lm_dir, tmp_path, one_process_world):
    tokenizer = load_tokenizer(str(tiny_lm_dir))
    model = load_model(str(tiny_lm_dir), lora=LoRAConfig(r=4, target_modules=("q_proj", "v_proj")), trainable=True)
    before = trainable(model)
    rows = sft_dataset(tokenizer, ["Tell me about films."] * 8, ["The user likes Action."] * 8, answer_only=False)
    config = TrainingConfig(batch_size=4, epochs=2, learning_rate=1e-2, deepspeed=f"configs/deepspeed/zero{stage}.json")
    history = sft(model, tokenizer, rows, config)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 4 and losses[-1] < losses[0]
    # nothing of DeepSpeed stays behind for the next model or child process
    assert not is_deepspeed_zero3_enabled() and "ACCELERATE_USE_DEEPSPEED" not in os.environ
    model.save_pretrained(tmp_path / "lora")
    saved = load_file(tmp_path / "lora" / "adapter_model.safetensors")
    initial = {name.replace(".default", ""): value for name, value in before.items()}  # peft drops the adapter name
    assert saved.keys() == initial.keys()
    assert all(saved[name].shape == initial[name].shape for name in saved)  # whole, not a ZeRO-3 partition
    assert any(not torch.equal(saved[name], initial[name]) for name in saved)


def test_zero2_sdpo_step(tiny_lm_dir, one_process_world):
    tokenizer = load_tokenizer(str(tiny_lm_dir))
    model = load_model(str(tiny_lm_dir), lora=LoRAConfig(r=4, target_modules=("q_proj", "v_proj")), trainable=True)
    rows = [{"prompt": "Films?", "chosen": "Action fan", "rejected": ["Hates films", "Likes Drama"]}] * 4
    config = TrainingConfig(batch_size=2, epochs=1, learning_rate=1e-2, deepspeed="configs/deepspeed/zero2.json")
    history = align(model, tokenizer, rows, config, beta=0.1)
    assert [entry["loss"] for entry in history if "loss" in entry]


def test_align_on_two_ranks_with_zero3_writes_one_whole_adapter(tiny_lm_dir, tmp_path, monkeypatch):
    """What a 2-GPU pod does (torch.distributed.run, one process per GPU), on DeepSpeed's CPU accelerator."""
    import json

    import pandas as pd

    from trackrec.cluster.launch import train
    from trackrec.config import config_to_dict
    from trackrec.llm.config import LLMConfig
    from trackrec.stages.align import align
    from trackrec.stages.outputs import Scored, Trained

    monkeypatch.setenv("TRACKREC_GPUS", "2")
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    llm = LLMConfig(base=str(tiny_lm_dir), lora=LoRAConfig(r=4, target_modules=("q_proj", "v_proj")))
    llm.align_train = TrainingConfig(batch_size=1, epochs=1, deepspeed="configs/deepspeed/zero3.json")
    scored = tmp_path / "scored"
    scored.mkdir()
    rows = {"prompt": ["Films?"] * 4, "chosen": ["Action fan"] * 4, "rejected": [["Hates films", "Drama"]] * 4}
    finished = {"chosen_finished": [True] * 4, "rejected_finished": [[True, True]] * 4}
    pd.DataFrame(rows | finished).to_parquet(Scored(scored).preferences)
    g0 = Trained(tmp_path / "g0")
    load_model(str(tiny_lm_dir), lora=llm.lora, trainable=True).save_pretrained(g0.adapter)
    inputs = {"scored": str(scored), "previous": str(g0.folder)}
    train(align, inputs, json.dumps(config_to_dict(llm)), str(tmp_path / "g1"))
    saved = load_file(Trained(tmp_path / "g1").adapter / "adapter_model.safetensors")
    initial = load_file(g0.adapter / "adapter_model.safetensors")
    assert saved.keys() == initial.keys() and all(saved[k].shape == initial[k].shape for k in saved)
    assert any(not torch.equal(saved[k], initial[k]) for k in saved)  # trained: not G0 written back
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no rank left a stray folder
    assert json.loads(Trained(tmp_path / "g1").log.read_text())
