"""vLLM backend of the engine (the `infer` extra, GPU images only; imported when chosen).

The same prompts as the Hugging Face reference (the chat template, token ids handed to vLLM), one
request per prompt with `SamplingParams(n=N)`, prefix caching on (the N samples and the Rec prompts
of one history share their prefix), the adapter served through `LoRARequest` over the base (never
merged), and tensor parallelism over the pod's GPUs. Yes/No scoring asks for one token restricted
to the two answer ids; with `logprobs_mode="processed_logprobs"` the returned log-probabilities are
taken after that restriction, so they are P(Yes) and P(No) renormalised over the two, which is
what every consumer uses (the reward and V's AUC normalise the pair).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trackrec.llm.config import VLLMConfig
from trackrec.llm.engine import Completion
from trackrec.llm.hf_engine import answer_token_ids
from trackrec.llm.sdpo_trainer import chat_prompt_ids


class VLLMEngine:
    def __init__(self, base: Path, adapter: str | Path | None, tokenizer, config: VLLMConfig, seed: int = 0):
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        self.tokenizer = tokenizer
        self.yes_id, self.no_id = answer_token_ids(tokenizer)
        self.llm = LLM(
            model=str(base),
            tokenizer=str(base),
            enable_lora=adapter is not None,
            max_lora_rank=config.max_lora_rank,
            enable_prefix_caching=True,
            tensor_parallel_size=config.parallel(),
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
            logprobs_mode="processed_logprobs",
            seed=seed,
        )
        self.lora = None if adapter is None else LoRARequest("adapter", 1, str(adapter))

    def _prompts(self, prompts: Sequence[str]) -> list[dict]:
        return [{"prompt_token_ids": chat_prompt_ids(self.tokenizer, p)} for p in prompts]

    def _generate(self, prompts: Sequence[str], params) -> list:
        return self.llm.generate(self._prompts(prompts), params, lora_request=self.lora, use_tqdm=True)

    def sample(
        self, prompts: Sequence[str], n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seed)
        return [
            [Completion(o.text.strip(), o.finish_reason == "stop") for o in request.outputs]
            for request in self._generate(prompts, params)
        ]

    def greedy(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(n=1, temperature=0.0, max_tokens=max_new_tokens)
        return [request.outputs[0].text.strip() for request in self._generate(prompts, params)]

    def yes_no_probs(self, prompts: Sequence[str]) -> np.ndarray:
        from vllm import SamplingParams

        answers = [self.yes_id, self.no_id]
        params = SamplingParams(n=1, temperature=0.0, max_tokens=1, allowed_token_ids=answers, logprobs=2)
        rows = []
        for request in self._generate(prompts, params):
            first = request.outputs[0].logprobs[0]  # token id -> Logprob at the first answer position
            rows.append([np.exp(first[i].logprob) if i in first else 0.0 for i in answers])
        return np.asarray(rows, dtype=np.float64)
