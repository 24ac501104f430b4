"""Stage distill (paper 3.5): the teacher's RecCoTs for a few users, SFT of G0 on them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.llm.adapters import load_model, load_tokenizer
from trackrec.llm.config import LLMConfig, check_context
from trackrec.llm.profile_teacher import ProfileTeacher
from trackrec.llm.records import PromptBuilder
from trackrec.llm.teacher import make_teacher
from trackrec.llm.training import last_loss, sft, sft_dataset
from trackrec.stages.llm_common import adapter_in, prompt_builder, read_samples, write_json
from trackrec.timing import work_begins


def teacher_reccots(llm: LLMConfig, builder: PromptBuilder, frame: pd.DataFrame, samples_dir, progress=True):
    """The configured teacher's RecCoT for each row of `frame`."""
    if frame.empty:
        return []
    if llm.teacher.kind == "profile":
        items = pd.read_parquet(Path(samples_dir) / "items.parquet")
        return ProfileTeacher(items).complete_histories(builder.kept_histories(frame))
    return make_teacher(llm.teacher, progress).complete(builder.reccot(frame))


def distill(samples_dir: str | Path, llm: LLMConfig, output: str | Path, progress: bool = True) -> dict:
    """Writes adapter/ (G0), corpus.parquet (prompt, reccot) and log.json; returns a summary."""
    check_context(llm)  # the first stage that loads the base: fail before the teacher is asked
    frame = read_samples(samples_dir, "distill")
    tokenizer = load_tokenizer(llm.base)
    work_begins()  # the teacher's answers are work, even from a local model
    builder = prompt_builder(llm, tokenizer, "distill samples")
    prompts = builder.reccot(frame)
    reccots = teacher_reccots(llm, builder, frame, samples_dir, progress)
    model = load_model(llm.base, lora=llm.lora, trainable=True)
    history = []
    if prompts:
        history = sft(model, tokenizer, sft_dataset(tokenizer, prompts, reccots, answer_only=False), llm.distill_train)
    summary = {"users": len(prompts), "teacher": llm.teacher.model, "last_loss": last_loss(history)}
    with atomic_dir(output) as tmp:
        model.save_pretrained(adapter_in(tmp))
        pd.DataFrame({"prompt": prompts, "reccot": reccots}).to_parquet(tmp / "corpus.parquet")
        write_json(tmp / "log.json", summary | {"train_log": history})
    return summary
