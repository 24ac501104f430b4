"""The engine interface every LLM stage uses; backends: Hugging Face (reference), vLLM (GPU extra)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Completion:
    text: str
    finished: bool  # ended with the end-of-turn token, not cut at max_new_tokens


class Engine(Protocol):
    tokenizer: object  # the base's tokenizer: prompts are cut to a token budget with it

    def use_adapter(self, adapter) -> bool:
        """Serve another LoRA adapter over the base in memory; False where it cannot (then load it anew)."""

    def sample(
        self, prompts: Sequence[str], n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[list[Completion]]:
        """n completions per prompt."""

    def greedy(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """One greedy completion per prompt."""

    def yes_no_probs(self, prompts: Sequence[str]) -> np.ndarray:
        """(len(prompts), 2): probabilities of the answer words Yes and No as the first answer token."""
