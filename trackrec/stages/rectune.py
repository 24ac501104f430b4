"""Stage rectune (eq. 5-6): SFT of V on the Rec prompt with G(t)'s greedy RecCoT, loss on the answer token."""

from __future__ import annotations

from pathlib import Path

from trackrec.llm.adapters import load_model, load_tokenizer
from trackrec.llm.config import LLMConfig
from trackrec.llm.training import sft, sft_dataset
from trackrec.stages.greedy import read_reccots
from trackrec.stages.llm_common import prompt_builder, read_samples, write_trained
from trackrec.timing import work_begins


def rectune(
    samples_dir: str | Path, greedy_dir: str | Path, validator: str | Path | None, llm: LLMConfig, output: str | Path
) -> list[dict]:
    """V(t) from V(t-1) (or a fresh adapter when there is none yet); writes adapter/ and log.json."""
    frame = read_samples(samples_dir, "train")
    tokenizer = load_tokenizer(llm.base)
    prompts = prompt_builder(llm, tokenizer, "train samples").rec(frame, read_reccots(greedy_dir, "train", frame))
    answers = ["Yes" if label == 1 else "No" for label in frame.label]
    model = load_model(llm.base, validator, lora=llm.lora, trainable=True, full=llm.rectune_train.full_finetune)
    work_begins()
    history = sft(model, tokenizer, sft_dataset(tokenizer, prompts, answers, answer_only=True), llm.rectune_train)
    return write_trained(model, history, output)
