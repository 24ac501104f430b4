"""Stage rectune (eq. 5-6): SFT of V on the Rec prompt with G(t)'s greedy RecCoT, loss on the answer token."""

from __future__ import annotations

from pathlib import Path

from trackrec.llm.adapters import load_model, load_tokenizer
from trackrec.llm.config import LLMConfig
from trackrec.llm.training import sft, sft_dataset
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import adapter_of, prompt_builder, read_samples, write_trained
from trackrec.timing import work_begins


def rectune(
    samples: str | Path, greedy: str | Path, previous: str | Path | None, llm: LLMConfig, output: str | Path
) -> list[dict]:
    """V(t) from V(t-1) (`previous`, a rectune output; none: a fresh adapter) on the Rec prompts of
    the train samples with G(t)'s Greedy RecCoTs; writes Trained."""
    frame = read_samples(samples, "train")
    tokenizer = load_tokenizer(llm.base)
    prompts = prompt_builder(llm, tokenizer, "train samples").rec(frame, read_reccots(greedy, "train", frame))
    answers = ["Yes" if label == 1 else "No" for label in frame.label]
    model = load_model(
        llm.base, adapter_of(previous), lora=llm.lora, trainable=True, full=llm.rectune_train.full_finetune
    )
    work_begins()
    history = sft(model, tokenizer, sft_dataset(tokenizer, prompts, answers, answer_only=True), llm.rectune_train)
    return write_trained(model, history, output)
