"""Hugging Face backend of the engine: batched, left-padded, chat-templated.

Sampling draws a prompt's n completions in one `generate` call over the prompt's key/value cache,
computed once and repeated n times (prefix sharing). Yes/No scoring reads the next-token
distribution after the assistant turn opens, at the ids the tokenizer itself gives the answer words;
consecutive prompts that share most of their tokens (a sample's N Rec prompts share the history and
differ in the RecCoT) compute the shared part once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from trackrec.errors import DataError
from trackrec.llm import chat
from trackrec.llm.engine import Completion

ANSWER_WORDS = ("Yes", "No")


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, words: Sequence[str] = ANSWER_WORDS) -> tuple[int, int]:
    """First token id of each answer word as the tokenizer encodes it at the start of a turn."""
    ids = tuple(tokenizer.encode(word, add_special_tokens=False)[0] for word in words)
    if ids[0] == ids[1]:
        raise ValueError(f"the answer words {words} start with the same token {ids[0]}; choose distinguishable words")
    return ids


def with_pad_token(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Bases without a pad token (a GGUF converted by some transformers versions, Llama) pad with
    end-of-text: padded positions are masked out everywhere, so the id only has to exist."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class HFEngine:
    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 16, progress: bool = True
    ):
        if tokenizer.chat_template is None:
            raise ValueError("the tokenizer has no chat template; use an instruct model or set tokenizer.chat_template")
        tokenizer.padding_side = "left"
        with_pad_token(tokenizer)
        self.model, self.tokenizer, self.batch_size, self.progress = model.eval(), tokenizer, batch_size, progress
        self.yes_id, self.no_id = answer_token_ids(tokenizer)
        self.context = getattr(model.config, "max_position_embeddings", None)

    def use_adapter(self, adapter: str | Path | None) -> bool:
        """Serve the LoRA adapter `adapter` in place of the one loaded, on the base already in memory:
        a second V scored without loading the base again. False where that cannot be (this engine holds
        no adapter, or `adapter` is none or a whole model): the caller loads it on its own."""
        if not isinstance(self.model, PeftModel) or adapter is None:
            return False
        if not (Path(adapter) / "adapter_config.json").is_file():
            return False
        name = f"adapter_{len(self.model.peft_config)}"  # peft keeps each loaded adapter by name
        self.model.load_adapter(str(adapter), adapter_name=name, is_trainable=False)
        self.model.set_adapter(name)
        self.model.eval()
        return True

    def render(self, prompts: Sequence[str]) -> list[str]:
        """Each prompt as one user turn through the chat template, the assistant turn opened."""
        return [chat.render(self.tokenizer, p) for p in prompts]

    def _check_context(self, longest: int, new_tokens: int) -> None:
        if self.context is not None and longest + new_tokens > self.context:
            raise DataError(
                "prompt",
                f"{longest} prompt tokens + {new_tokens} new tokens exceed the model's context of {self.context}; "
                "lower the history token budget",
            )

    def _encode(self, prompts: Sequence[str], new_tokens: int) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(self.render(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        self._check_context(int(batch["attention_mask"].sum(1).max()), new_tokens)
        return {k: v.to(self.model.device) for k, v in batch.items()}

    def _chunks(self, prompts: Sequence[str], desc: str):
        starts = range(0, len(prompts), self.batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", disable=not self.progress, leave=False):
            yield prompts[start : start + self.batch_size]

    @torch.no_grad()
    def _generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, **sampling) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        stop = self.model.generation_config.eos_token_id
        stop = self.tokenizer.eos_token_id if stop is None else stop
        stop_ids = torch.tensor(stop if isinstance(stop, list) else [stop])
        for chunk in self._chunks(prompts, "generate"):
            batch = self._encode(chunk, max_new_tokens)
            # the prompt's cache once (all but its last token, which generate feeds itself), repeated n times
            cache = self._cache_of(batch["input_ids"][:, :-1], batch["attention_mask"][:, :-1])
            cache.batch_repeat_interleave(n)
            tokens = self.model.generate(
                input_ids=batch["input_ids"].repeat_interleave(n, dim=0),
                attention_mask=batch["attention_mask"].repeat_interleave(n, dim=0),
                past_key_values=cache,
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
            new = tokens[:, batch["input_ids"].shape[1] :].cpu()
            finished = torch.isin(new, stop_ids).any(dim=1).tolist()
            texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            completions = [Completion(t.strip(), f) for t, f in zip(texts, finished, strict=True)]
            out.extend(completions[i * n : (i + 1) * n] for i in range(len(chunk)))
        return out

    def _cache_of(self, ids: torch.Tensor, mask: torch.Tensor) -> DynamicCache:
        """The key/value cache of left-padded token rows, to be continued by later tokens."""
        cache = DynamicCache(config=self.model.config)
        if ids.shape[1] > 0:
            positions = (mask.cumsum(1) - 1).clamp(min=0)  # left padding: as generate numbers them
            self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, logits_to_keep=1
            )
        return cache

    def sample(
        self, prompts: Sequence[str], n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[list[Completion]]:
        torch.manual_seed(seed)
        return self._generate(prompts, n, max_new_tokens, do_sample=True, temperature=temperature, top_p=top_p, top_k=0)

    def greedy(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        return [completions[0].text for completions in self._generate(prompts, 1, max_new_tokens, do_sample=False)]

    @torch.no_grad()
    def yes_no_probs(self, prompts: Sequence[str]) -> np.ndarray:
        rows = []
        for chunk in self._chunks(prompts, "score"):
            ids = self.tokenizer(self.render(chunk), add_special_tokens=False)["input_ids"]
            self._check_context(max(map(len, ids)), 1)
            logits = self._last_logits(ids, shared_prefixes(ids)).float()
            rows.append(torch.softmax(logits, dim=-1)[:, [self.yes_id, self.no_id]].cpu())
        return torch.cat(rows).numpy()

    @torch.no_grad()
    def completion_logprobs(self, prompts: Sequence[str], completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probability of each completion's tokens after its prompt, and their count: with
        samples of one model scored under two, the per-token KL between them is the mean difference of
        the sums over the total count."""
        sums, counts = [], []
        pairs = list(zip(prompts, completions, strict=True))
        for chunk in self._chunks(pairs, "log-probs"):
            prompt_ids = self.tokenizer(self.render([p for p, _ in chunk]), add_special_tokens=False)["input_ids"]
            answer_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for _, c in chunk]
            rows = [p + a for p, a in zip(prompt_ids, answer_ids, strict=True)]
            self._check_context(max(map(len, rows)), 0)
            ids, mask = self._left_padded(rows)
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
            token_logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            for row, answer in enumerate(answer_ids):
                sums.append(float(token_logps[row, token_logps.shape[1] - len(answer) :].sum()) if answer else 0.0)
                counts.append(len(answer))
        return np.asarray(sums), np.asarray(counts)

    def _last_logits(self, ids: list[list[int]], groups: list[tuple[int, int]]) -> torch.Tensor:
        """Next-token logits after each prompt. A group of consecutive prompts (start, shared prefix
        length) has its prefix computed once; each member then runs only its own tokens over the
        group's cached keys and values. Both parts are left-padded, so every row's last position is
        real and the only one whose logits are computed."""
        device = self.model.device
        member_of = group_of_each(groups, len(ids))
        prefixes = [ids[start][:shared] for start, shared in groups]
        suffixes = [prompt[groups[g][1] :] for prompt, g in zip(ids, member_of, strict=True)]
        prefix_ids, prefix_mask = self._left_padded(prefixes)
        cache = self._cache_of(prefix_ids, prefix_mask)
        members = torch.tensor(member_of, device=device)
        cache.reorder_cache(members)
        suffix_ids, suffix_mask = self._left_padded(suffixes)
        offsets = prefix_mask.sum(1)[members, None]
        return self.model(
            input_ids=suffix_ids,
            attention_mask=torch.cat([prefix_mask[members], suffix_mask], dim=1),
            position_ids=offsets + (suffix_mask.cumsum(1) - 1).clamp(min=0),
            past_key_values=cache,
            logits_to_keep=1,
        ).logits[:, -1]

    def _left_padded(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(map(len, sequences))
        ids = [[self.tokenizer.pad_token_id] * (width - len(s)) + s for s in sequences]
        mask = [[0] * (width - len(s)) + [1] * len(s) for s in sequences]
        shape = (len(sequences), width)  # also when every row is empty
        return tuple(torch.tensor(rows, dtype=torch.long, device=self.model.device).view(shape) for rows in (ids, mask))


def shared_prefixes(ids: Sequence[Sequence[int]], share: float = 0.5) -> list[tuple[int, int]]:
    """Consecutive prompts as groups (first index, prefix length computed once for the group): a
    prompt joins the group when it shares at least `share` of the group's first prompt (the N Rec
    prompts of one sample differ only in their RecCoT, after the history). Every member keeps at
    least its last token of its own, whose logits are read."""
    groups: list[list[int]] = []  # [start, shared]
    for i, prompt in enumerate(ids):
        if groups:
            start, shared = groups[-1]
            common = _common_length(ids[start][:shared], prompt)
            if common >= share * len(ids[start]):
                groups[-1][1] = min(common, len(prompt) - 1)
                continue
        groups.append([i, len(prompt) - 1])
    return [(start, shared) for start, shared in groups]


def group_of_each(groups: Sequence[tuple[int, int]], count: int) -> list[int]:
    """The index in `groups` (from `shared_prefixes`) of each of the `count` prompts."""
    starts = [start for start, _ in groups] + [count]
    return [g for g, (start, end) in enumerate(zip(starts, starts[1:], strict=False)) for _ in range(start, end)]


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length
