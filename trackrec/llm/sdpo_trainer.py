"""S-DPO (TrackRec eq. 4) as a subclass of trl's DPOTrainer: one chosen and K rejected completions.

Dataset rows: {"prompt": str (the user turn), "chosen": str, "rejected": [str] * K}, K the same for
every row (N-1 for S-DPO, 1 for DPO4Rec's best-vs-worst); optional chosen_finished: bool and
rejected_finished: [bool] * K say which completions ended (only those are trained to end). A
sample's prompt, chosen and rejected completions go through the model as one packed row, the prompt
computed once (`MultiRejectedCollator`). The reference is
whatever trl's DPOTrainer uses (an explicit ref_model, the "ref" adapter, the base with adapters
off, or precomputed log-probs), so G(t-1) serves as reference by passing it, or by precomputing
before training. With a peft policy, the precomputed log-probs are cached under a fingerprint of
the adapters and a sample of the base (`reference_fingerprint`), not trl's hash of every weight.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from accelerate.utils import is_peft_model
from transformers.data.data_collator import DataCollatorMixin
from trl import DPOTrainer
from trl.trainer.dpo_trainer import use_adapter

from trackrec.llm import chat
from trackrec.llm.sdpo_loss import sdpo_loss


def tokenize_preference(example: dict, tokenizer) -> dict:
    """Chat-templated prompt ids, and completion ids ending in the tokenizer's eos where the completion
    finished (optional columns chosen_finished / rejected_finished; a text cut at max_new_tokens gets none)."""
    prompt_ids = chat.prompt_ids(tokenizer, example["prompt"])
    rejected_finished = example.get("rejected_finished") or [True] * len(example["rejected"])

    def completion(text: str, finished: bool) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if finished else [])

    return {
        "prompt_ids": prompt_ids,
        "chosen_ids": completion(example["chosen"], example.get("chosen_finished", True)),
        "rejected_ids": [completion(t, f) for t, f in zip(example["rejected"], rejected_finished, strict=True)],
    }


def pack_completions(prompt_ids: list[int], completions: list[list[int]], prompt_len: int, completion_len: int):
    """One sample as one row: the prompt left-padded to `prompt_len`, then each completion right-padded
    to `completion_len`. Returns (ids, positions, segment, real): segment 0 is the prompt, k + 1 the
    k-th completion; a completion continues the prompt's positions as if it stood alone after it."""
    pad = prompt_len - len(prompt_ids)
    ids, positions = [0] * pad + list(prompt_ids), [0] * pad + list(range(len(prompt_ids)))
    segment, real = [0] * prompt_len, [False] * pad + [True] * len(prompt_ids)
    for k, completion in enumerate(completions, start=1):
        fill = completion_len - len(completion)
        ids += list(completion) + [0] * fill
        positions += list(range(len(prompt_ids), len(prompt_ids) + completion_len))
        segment += [k] * completion_len
        real += [True] * len(completion) + [False] * fill
    return ids, positions, segment, real


@dataclass
class MultiRejectedCollator(DataCollatorMixin):
    """B samples as B packed rows [prompt | chosen | rejected_1 | ... | rejected_K] (`pack_completions`)
    with a 4D attention mask: the prompt is causal, each completion sees the prompt and its own earlier
    tokens, never another completion. So a sample's prompt goes through the model once, not K + 1 times.
    Precomputed reference log-probs pass through."""

    pad_token_id: int
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        completions = [[ex["chosen_ids"], *ex["rejected_ids"]] for ex in examples]
        prompt_len = max(len(ex["prompt_ids"]) for ex in examples)
        completion_len = max(len(c) for row in completions for c in row)
        packed = [
            pack_completions(ex["prompt_ids"], row, prompt_len, completion_len)
            for ex, row in zip(examples, completions, strict=True)
        ]
        ids, positions, segment, real = (torch.tensor(column) for column in zip(*packed, strict=True))
        ids = ids.masked_fill(~real, self.pad_token_id)
        causal = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril()
        same_or_prompt = (segment[:, None, :] == 0) | (segment[:, None, :] == segment[:, :, None])
        # a padding query sees itself only: a row with no key would give NaN in attention
        mask = (causal & same_or_prompt & real[:, None, :]) | torch.eye(ids.shape[1], dtype=torch.bool)
        output = {
            "input_ids": ids,
            "attention_mask": mask.unsqueeze(1),
            "position_ids": positions,
            "completion_ids": ids[:, prompt_len:].view(len(examples), -1, completion_len),
            "completion_mask": real[:, prompt_len:].view(len(examples), -1, completion_len),
        }
        if "ref_chosen_logps" in examples[0]:
            output["ref_chosen_logps"] = torch.tensor([ex["ref_chosen_logps"] for ex in examples])
            output["ref_rejected_logps"] = torch.tensor([ex["ref_rejected_logps"] for ex in examples])
        return output


def reference_fingerprint(model) -> str:
    """What a peft model's reference log-probs depend on: every adapter weight in full, and each frozen
    base weight by its name, shape and a strided sample of 64 values. trl's own key hashes every weight
    through the CPU in float32: a minute for a 7B base on an H200, longer than its S-DPO steps."""
    adapters = tuple(f".{name}." for name in model.peft_config)  # peft names adapter weights `...lora_A.<name>.`
    digest = hashlib.sha256(str(model.get_base_model().config._name_or_path).encode())
    for name, tensor in sorted(model.state_dict().items()):
        values = tensor.detach().flatten()
        if not any(adapter in name for adapter in adapters):
            values = values[:: max(1, values.numel() // 64)]
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(values.float().cpu().numpy().tobytes())
    return digest.hexdigest()


class SDPOTrainer(DPOTrainer):
    """trl's DPOTrainer with the softmax-DPO loss over K rejected completions, per example then averaged."""

    def __init__(self, *args, processing_class=None, **kwargs):
        kwargs.setdefault("data_collator", MultiRejectedCollator(pad_token_id=processing_class.pad_token_id))
        training_args, model = kwargs["args"], kwargs.get("model")
        own_precompute = (
            training_args.precompute_ref_log_probs and is_peft_model(model) and kwargs.get("eval_dataset") is None
        )
        if own_precompute:  # trl would hash every base weight for its cache key: precompute here instead
            training_args.precompute_ref_log_probs = False
        super().__init__(*args, processing_class=processing_class, **kwargs)
        if own_precompute:
            training_args.precompute_ref_log_probs = self.precompute_ref_logps = True
            self._precompute_model_hash = reference_fingerprint(self.model)
            batch_size = training_args.precompute_ref_batch_size or training_args.per_device_train_batch_size
            self.train_dataset = self._precompute_ref_logps(self.train_dataset, "train", batch_size)

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
        """Summed completion log-probs (B, K + 1) of the packed rows; logits only where a completion
        token is predicted: the prompt's last position for its first token, then its own positions."""
        completion_ids = inputs["completion_ids"]
        completions, length = completion_ids.shape[1:]
        start = inputs["input_ids"].shape[1] - completions * length  # where the first completion begins
        predictors = [
            [start - 1] + list(range(start + k * length, start + (k + 1) * length - 1)) for k in range(completions)
        ]
        logits = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            position_ids=inputs["position_ids"],
            logits_to_keep=torch.tensor(predictors, device=completion_ids.device).flatten(),
            use_cache=False,
        ).logits
        logits = logits.float().view(*completion_ids.shape, -1)
        token_logps = logits.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
        return (token_logps * inputs["completion_mask"]).sum(dim=-1)

    def _split(self, logps: torch.Tensor, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) chosen and (B, K) rejected."""
        return logps[:, 0], logps[:, 1:]

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
