"""Stage distill (paper 3.5), in two steps: `teach` asks the teacher for a few users' RecCoTs, in the
task's own pod (the one that holds the teacher's key); `distill` trains G0 on them, a training stage
like align and rectune (in the pod, or a TrainJob over several nodes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.llm.adapters import load_model, load_tokenizer
from trackrec.llm.config import LLMConfig, check_context
from trackrec.llm.profile_teacher import ProfileTeacher
from trackrec.llm.records import PromptBuilder
from trackrec.llm.teacher import make_teacher, screened, special_tokens
from trackrec.llm.training import sft, sft_dataset
from trackrec.stages.llm_common import prompt_builder, read_samples, write_trained
from trackrec.stages.outputs import Corpus, Selected
from trackrec.timing import work_begins


def teacher_reccots(llm: LLMConfig, builder: PromptBuilder, frame: pd.DataFrame, samples, progress=True):
    """The configured teacher's RecCoT for each row of `frame` (of the Selected `samples`)."""
    if frame.empty:
        return []
    if llm.teacher.kind == "profile":
        items = pd.read_parquet(Selected(samples).required("items"))
        return ProfileTeacher(items).complete_histories(builder.kept_histories(frame))
    return make_teacher(llm.teacher, progress).complete(builder.reccot(frame))


def teach(samples: str | Path, llm: LLMConfig, output: str | Path, progress: bool = True) -> int:
    """Writes Corpus: the distill samples' RecCoT prompts and the teacher's answers."""
    check_context(llm)  # the first stage that loads the base: fail before the teacher is asked
    frame = read_samples(samples, "distill")
    work_begins()  # the teacher's answers are work, even from a local model
    tokenizer = load_tokenizer(llm.base)
    builder = prompt_builder(llm, tokenizer, "distill samples")
    # every teacher's answers become G0's targets: none may hold what G0's tokenizer reads as a turn
    special = special_tokens(tokenizer)
    answers = teacher_reccots(llm, builder, frame, samples, progress)
    reccots = [screened(a, llm.teacher.max_tokens, f"teacher answer {i}", special) for i, a in enumerate(answers)]
    corpus = pd.DataFrame({"prompt": builder.reccot(frame), "reccot": reccots})
    with atomic_dir(output) as tmp:
        corpus.to_parquet(Corpus(tmp).table)
    return len(corpus)


def distill(corpus: str | Path, llm: LLMConfig, output: str | Path) -> list[dict]:
    """G0: a fresh adapter SFT'd on the teacher's Corpus; writes Trained, with a copy of the corpus."""
    source = corpus
    corpus = pd.read_parquet(Corpus(source).required("table"))
    tokenizer = load_tokenizer(llm.base)
    model = load_model(llm.base, lora=llm.lora, trainable=True, full=llm.distill_train.full_finetune)
    work_begins()
    history = []
    if len(corpus):
        dataset = sft_dataset(tokenizer, corpus.prompt.tolist(), corpus.reccot.tolist(), answer_only=False)
        history = sft(model, tokenizer, dataset, llm.distill_train)
    return write_trained(model, history, output, corpus=Corpus(source).table)
