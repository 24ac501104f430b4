"""The method's exact definitions, not only its direction: eq. 4's value, and which model is the
reference in align."""

import json
import math

import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from trackrec.llm.config import LLMConfig, TrainingConfig
from trackrec.llm.sdpo_loss import sdpo_loss
from trackrec.stages.align import align
from trackrec.stages.outputs import Scored, Trained


def test_eq4_with_several_rejected_and_unequal_margins_matches_a_hand_computed_value():
    # beta = 0.5; chosen log-ratio 0.5; rejected 0.2, -0.4, 1.0
    # margins beta * (rejected - chosen) = -0.15, -0.45, 0.25
    # L = -log sigmoid(-log(e^-0.15 + e^-0.45 + e^0.25)) = log(1 + e^-0.15 + e^-0.45 + e^0.25)
    expected = math.log(1 + math.exp(-0.15) + math.exp(-0.45) + math.exp(0.25))
    loss = sdpo_loss(torch.tensor([0.5]), torch.tensor([[0.2, -0.4, 1.0]]), beta=0.5)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(1.330349, abs=1e-6)  # a mean of the margins gives 0.637, their max 0.826


def test_align_trains_against_g_t_minus_1_not_the_base(tmp_path, tiny_lm_dir):
    """G(t-1) is an adapter far from the base. At the first step the policy equals the reference,
    so the loss is log N and every reward is 0 exactly when the reference is G(t-1); against the
    base (adapters off) the rewards would be G(t-1)'s log-ratio to the base, far from 0."""
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    previous = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in previous.named_parameters():
            if "lora_B" in name:
                parameter.copy_(3 * torch.randn_like(parameter))
    previous.save_pretrained(Trained(tmp_path / "G1").adapter)
    scored = tmp_path / "scored"
    scored.mkdir()
    pd.DataFrame(
        {
            "prompt": ["The user likes Action", "Here is a list of movies"],
            "chosen": ["Yes the user likes Action", "Comedy"],
            "rejected": [["No Horror", "Drama"], ["Drama movies a lot", "Yes"]],
            "chosen_finished": [True, True],
            "rejected_finished": [[True, True], [True, False]],
        }
    ).to_parquet(Scored(scored).preferences)
    llm = LLMConfig(base=str(tiny_lm_dir), align_train=TrainingConfig(batch_size=2, learning_rate=1e-3))
    align(scored, tmp_path / "G1", llm, tmp_path / "G2")
    first = json.loads(Trained(tmp_path / "G2").log.read_text())[0]
    assert first["loss"] == pytest.approx(math.log(3), abs=1e-4)  # N = 1 chosen + 2 rejected
    assert first["rewards/chosen"] == pytest.approx(0, abs=1e-4)
    assert first["rewards/rejected"] == pytest.approx(0, abs=1e-4)
