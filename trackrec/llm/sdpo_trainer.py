"""S-DPO (TrackRec eq. 4) as a subclass of trl's DPOTrainer: one chosen and K rejected completions.

Dataset rows: {"prompt": str (the user turn), "chosen": str, "rejected": [str] * K}, K the same for
every row (N-1 for S-DPO, 1 for DPO4Rec's best-vs-worst); optional chosen_finished: bool and
rejected_finished: [bool] * K say which completions ended (only those are trained to end). The
chosen and all rejected completions of a batch go through the model in one concatenated forward:
rows [chosen_0..chosen_B-1, then rejected_0_0..rejected_0_K-1, rejected_1_0, ...]. The reference is
whatever trl's DPOTrainer uses (an explicit ref_model, the "ref" adapter, the base with adapters
off, or precomputed log-probs), so G(t-1) serves as reference by passing it, or by precomputing
before training.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from accelerate.utils import is_peft_model
from transformers.data.data_collator import DataCollatorMixin
from trl import DPOTrainer
from trl.trainer.dpo_trainer import use_adapter
from trl.trainer.utils import pad

from trackrec.llm.sdpo_loss import sdpo_loss


def chat_prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The prompt as one user turn through the chat template, the assistant turn opened."""
    turn = [{"role": "user", "content": prompt}]
    return list(tokenizer.apply_chat_template(turn, tokenize=True, add_generation_prompt=True, return_dict=False))


def tokenize_preference(example: dict, tokenizer) -> dict:
    """Chat-templated prompt ids, and completion ids ending in the tokenizer's eos where the completion
    finished (optional columns chosen_finished / rejected_finished; a text cut at max_new_tokens gets none)."""
    prompt_ids = chat_prompt_ids(tokenizer, example["prompt"])
    rejected_finished = example.get("rejected_finished") or [True] * len(example["rejected"])

    def completion(text: str, finished: bool) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if finished else [])

    return {
        "prompt_ids": prompt_ids,
        "chosen_ids": completion(example["chosen"], example.get("chosen_finished", True)),
        "rejected_ids": [completion(t, f) for t, f in zip(example["rejected"], rejected_finished, strict=True)],
    }


@dataclass
class MultiRejectedCollator(DataCollatorMixin):
    """Right-padded batch of B*(K+1) sequences with a completion mask; precomputed reference log-probs pass through."""

    pad_token_id: int
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        sequences, masks = [], []
        completions = [ex["chosen_ids"] for ex in examples] + [r for ex in examples for r in ex["rejected_ids"]]
        prompts = [ex["prompt_ids"] for ex in examples] + [
            ex["prompt_ids"] for ex in examples for _ in ex["rejected_ids"]
        ]
        for prompt, completion in zip(prompts, completions, strict=True):
            sequences.append(torch.tensor(prompt + completion))
            masks.append(torch.tensor([0] * len(prompt) + [1] * len(completion)))
        output = {
            "input_ids": pad(sequences, padding_value=self.pad_token_id, padding_side="right"),
            "attention_mask": pad([torch.ones_like(s) for s in sequences], padding_value=0, padding_side="right"),
            "completion_mask": pad(masks, padding_value=0, padding_side="right"),
        }
        output["rejected_per_example"] = torch.tensor(len(examples[0]["rejected_ids"]))
        if "ref_chosen_logps" in examples[0]:
            output["ref_chosen_logps"] = torch.tensor([ex["ref_chosen_logps"] for ex in examples])
            output["ref_rejected_logps"] = torch.tensor([ex["ref_rejected_logps"] for ex in examples])
        return output


class SDPOTrainer(DPOTrainer):
    """trl's DPOTrainer with the softmax-DPO loss over K rejected completions, per example then averaged."""

    def __init__(self, *args, processing_class=None, **kwargs):
        kwargs.setdefault("data_collator", MultiRejectedCollator(pad_token_id=processing_class.pad_token_id))
        super().__init__(*args, processing_class=processing_class, **kwargs)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        sizes = {len(r) for r in dataset["rejected"]}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(
                f"every {dataset_name} row needs the same number (>= 1) of rejected completions, got {sizes}"
            )
        return dataset.map(
            tokenize_preference,
            fn_kwargs={"tokenizer": processing_class},
            remove_columns=dataset.column_names,
            desc=f"Tokenizing {dataset_name} preferences",
        )

    def _sequence_logps(self, model, inputs) -> torch.Tensor:
        """Summed completion log-probs of every row (B*(K+1),), through trl's fused LM head."""
        labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            labels=labels,
            use_cache=False,
            fused_lm_head=True,
        )
        return outputs.log_probs[:, -(inputs["completion_mask"].shape[1] - 1) :].sum(dim=1)

    def _split(self, logps: torch.Tensor, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) chosen and (B, K) rejected from the concatenated rows."""
        batch = len(logps) // (int(inputs["rejected_per_example"]) + 1)
        return logps[:batch], logps[batch:].view(batch, -1)

    def compute_ref_log_probs(self, model, inputs):
        """Reference log-probs as trl picks the reference: ref_model, the 'ref' adapter, or adapters off."""
        adapter = contextlib.nullcontext()
        if self.ref_model is None and is_peft_model(self.model):
            unwrapped = self.accelerator.unwrap_model(self.model)
            adapter = use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        with torch.no_grad(), adapter:
            return self._split(self._sequence_logps(model, inputs), inputs)

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        chosen_logps, rejected_logps = self._split(self._sequence_logps(model, inputs), inputs)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = self.compute_ref_log_probs(self.ref_model or model, inputs)
        chosen_logratio, rejected_logratios = chosen_logps - ref_chosen, rejected_logps - ref_rejected
        loss = sdpo_loss(chosen_logratio, rejected_logratios, self.beta).mean()

        chosen_rewards = self.beta * chosen_logratio.detach()
        rejected_rewards = self.beta * rejected_logratios.detach()
        metrics = {
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
            "rewards/accuracies": (chosen_rewards.unsqueeze(1) > rejected_rewards).all(1).float().mean(),
            "rewards/margins": (chosen_rewards.unsqueeze(1) - rejected_rewards).mean(),
            "logps/chosen": chosen_logps.detach().mean(),
            "logps/rejected": rejected_logps.detach().mean(),
        }
        for name, value in metrics.items():
            self._metrics[mode][name].append(self.accelerator.gather_for_metrics(value).mean().item())
        return (loss, {}) if return_outputs else loss
