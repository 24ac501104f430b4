import copy
import math

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from trackrec.llm.sdpo_trainer import SDPOTrainer

ROWS = [
    {"prompt": "The user likes Action", "chosen": "Yes the user likes Action", "rejected": ["No Horror", "Drama"]},
    {"prompt": "Here is a list of movies", "chosen": "Comedy", "rejected": ["Drama movies a lot", "Yes"]},
]


def config(tmp_path, **overrides):
    args = {
        "output_dir": str(tmp_path),
        "per_device_train_batch_size": 2,
        "report_to": [],
        "use_cpu": True,
        "bf16": False,
        "beta": 0.1,
        "max_length": None,
        "logging_steps": 1,
        "save_strategy": "no",
    }
    return DPOConfig(**(args | overrides))


def perturbed(model, seed=1, scale=0.05):
    torch.manual_seed(seed)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn_like(p))
    return other


def trainer(tiny_lm, tmp_path, rows=ROWS, ref=None, **kwargs):
    model, tokenizer = tiny_lm
    return SDPOTrainer(
        model=model,
        ref_model=ref,
        args=config(tmp_path, **kwargs.pop("args", {})),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        **kwargs,
    )


def first_batch(t):
    return t.data_collator([t.train_dataset[i] for i in range(len(t.train_dataset))])


def test_one_rejected_equals_trl_sigmoid_dpo(tiny_lm, tmp_path):
    model, tokenizer = tiny_lm
    rows = [dict(r, rejected=r["rejected"][:1]) for r in ROWS]
    ours = trainer(tiny_lm, tmp_path, rows, ref=perturbed(model))
    ours_loss = ours.compute_loss(ours.model, first_batch(ours))
    reference = DPOTrainer(
        model=ours.model,
        ref_model=ours.ref_model,
        args=config(tmp_path / "trl"),
        train_dataset=Dataset.from_list([dict(r, rejected=r["rejected"][0]) for r in rows]),
        processing_class=tokenizer,
    )
    # Same token ids for both trainers, through trl's own collator and loss.
    same_ids = [dict(ex, rejected_ids=ex["rejected_ids"][0]) for ex in ours.train_dataset]
    trl_batch = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(same_ids)
    trl_loss = reference.compute_loss(reference.model, trl_batch)
    torch.testing.assert_close(ours_loss, trl_loss, atol=1e-5, rtol=0)


def test_policy_equal_to_reference_gives_log_n(tiny_lm, tmp_path):
    model, _ = tiny_lm
    t = trainer(tiny_lm, tmp_path, ref=copy.deepcopy(model))
    loss = t.compute_loss(t.model, first_batch(t))
    assert loss.item() == pytest.approx(math.log(3), abs=1e-5)  # N = 1 chosen + 2 rejected


def test_precomputed_reference_log_probs(tiny_lm, tmp_path):
    model, _ = tiny_lm
    t = trainer(tiny_lm, tmp_path, ref=copy.deepcopy(model), args={"precompute_ref_log_probs": True})
    batch = first_batch(t)
    assert batch["ref_rejected_logps"].shape == (2, 2)
    assert t.compute_loss(t.model, batch).item() == pytest.approx(math.log(3), abs=1e-5)


def test_precomputed_reference_follows_the_adapter_not_a_cached_one(tiny_lm, tmp_path):
    """Ranks share one file-backed dataset and trl caches the reference log-probs beside it: the cache
    key must change with the adapter (G(t-1) differs each iteration), or a later align trains against
    an earlier G."""
    model, tokenizer = tiny_lm
    Dataset.from_list(ROWS).save_to_disk(tmp_path / "rows")
    policy = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    precomputed = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, p in policy.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn_like(p))
        t = SDPOTrainer(
            model=policy,
            args=config(tmp_path / str(seed), precompute_ref_log_probs=True),
            train_dataset=Dataset.load_from_disk(str(tmp_path / "rows")),
            processing_class=tokenizer,
        )
        batch = first_batch(t)
        on_the_fly = t.compute_ref_log_probs(t.model, batch)
        torch.testing.assert_close(batch["ref_chosen_logps"], on_the_fly[0])
        torch.testing.assert_close(batch["ref_rejected_logps"], on_the_fly[1])
        precomputed.append(batch["ref_chosen_logps"])
        policy.delete_adapter("ref")  # trl copies the adapter to "ref" each time it is handed a peft model
    assert not torch.allclose(*precomputed)


def chosen_logratio(t):
    batch = first_batch(t)
    with torch.no_grad():
        chosen, rejected = t._split(t._sequence_logps(t.model, batch), batch)
        ref_chosen, ref_rejected = t.compute_ref_log_probs(t.ref_model or t.model, batch)
    return (chosen - ref_chosen).mean().item(), (rejected - ref_rejected).mean().item()


def test_training_raises_the_chosen_log_ratio(tiny_lm, tmp_path):
    model, _ = tiny_lm
    t = trainer(tiny_lm, tmp_path, ref=copy.deepcopy(model), args={"max_steps": 3, "learning_rate": 1e-2})
    t.train()
    chosen, rejected = chosen_logratio(t)
    assert chosen > 0 > rejected
    losses = [entry["loss"] for entry in t.state.log_history if "loss" in entry]
    assert len(losses) == 3 and losses[-1] < losses[0]  # the same batch each step: its loss falls


def test_lora_adapter_trains_against_the_frozen_base(tiny_lm, tmp_path):
    peft_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    t = trainer(tiny_lm, tmp_path, peft_config=peft_config, args={"max_steps": 3, "learning_rate": 1e-2})
    base_before = {n: p.clone() for n, p in t.model.named_parameters() if "lora" not in n}
    t.train()
    assert all(torch.equal(p, base_before[n]) for n, p in t.model.named_parameters() if "lora" not in n)
    chosen, rejected = chosen_logratio(t)  # reference = the base with the adapter off
    assert chosen > rejected


def test_rows_must_have_the_same_number_of_rejected(tiny_lm, tmp_path):
    rows = [ROWS[0], dict(ROWS[1], rejected=["only one"])]
    with pytest.raises(ValueError, match=r"same number \(>= 1\) of rejected completions, got \{1, 2\}"):
        trainer(tiny_lm, tmp_path, rows)


def test_completions_cut_at_max_new_tokens_get_no_eos(tiny_lm):
    from trackrec.llm.sdpo_trainer import tokenize_preference

    _, tokenizer = tiny_lm
    row = {"prompt": "p", "chosen": "Yes", "rejected": ["No", "Drama"], "chosen_finished": False}
    tokens = tokenize_preference(row | {"rejected_finished": [True, False]}, tokenizer)
    eos = tokenizer.eos_token_id
    assert tokens["chosen_ids"][-1] != eos
    assert [ids[-1] == eos for ids in tokens["rejected_ids"]] == [True, False]
    assert all(ids[-1] == eos for ids in tokenize_preference(ROWS[0], tokenizer)["rejected_ids"])  # default: ended
