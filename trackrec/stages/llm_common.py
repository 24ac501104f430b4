"""What the LLM stages share: reading the selected samples, opening an engine, writing JSON."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.errors import DataError
from trackrec.llm.config import LLMConfig
from trackrec.llm.distributed import is_main_process, save_adapter
from trackrec.llm.engine import Engine
from trackrec.llm.records import PromptBuilder
from trackrec.stages.outputs import Selected, Trained
from trackrec.stages.shards import WHOLE, Shard
from trackrec.timing import loading, work_begins


def write_trained(model, history: list[dict], output: str | Path, corpus: Path | None = None) -> list[dict]:
    """Rank 0 writes a trained adapter, trl's log and a copy of the `corpus` it learnt from (G0's) as
    Trained; the other ranks only help it gather an adapter that DeepSpeed ZeRO-3 sharded across them."""
    if not is_main_process():
        save_adapter(model, None)
        return history
    with atomic_dir(output) as tmp:
        save_adapter(model, Trained(tmp).adapter)
        write_json(Trained(tmp).log, history)
        if corpus is not None:
            shutil.copy2(corpus, Trained(tmp).corpus)
    return history


def read_samples(samples: str | Path, split: str, shard: Shard = WHOLE) -> pd.DataFrame:
    """The selected samples of `split` that belong to `shard`."""
    path = Selected(samples).split(split)
    if not path.is_file():
        raise DataError(str(path), "selected samples not found; run select_samples first")
    return shard.of(pd.read_parquet(path))


def alignment_samples(samples: str | Path, iteration: int, shard: Shard = WHOLE) -> pd.DataFrame:
    """The samples round `iteration` aligns G on (selected samples without rounds: the train ones)."""
    if not Selected(samples).split("align").is_file():
        return read_samples(samples, "train", shard)
    frame = read_samples(samples, "align", shard)
    return frame[frame["round"] == iteration].drop(columns="round")


def prompt_builder(llm: LLMConfig, tokenizer, source: str) -> PromptBuilder:
    generation = llm.generation
    return PromptBuilder(tokenizer, generation.history_tokens, generation.validator_items, source)


def adapter_of(trained: str | Path | None) -> Path | None:
    """The adapter in a training stage's output (None: none, the base alone)."""
    return None if trained is None else Trained(trained).adapter


def open_engine(llm: LLMConfig, trained: str | Path | None, progress: bool = True, scoring: bool = False) -> Engine:
    """G or V for inference: the base with the adapter of `trained` (a training stage's output; its
    adapter may be a fully fine-tuned model in its place), on the configured backend; `scoring`:
    float32 weights, whatever the device (torch and the engines are imported here, so that tasks
    that only read and write tables start fast)."""
    from trackrec.llm.adapters import is_full_model, load_model, load_tokenizer
    from trackrec.llm.base_model import resolve_model
    from trackrec.llm.hf_engine import HFEngine

    adapter = adapter_of(trained)
    tokenizer = load_tokenizer(llm.base)
    if llm.engine == "vllm":
        from trackrec.llm.vllm_engine import VLLMEngine  # the infer extra: GPU images only

        base = resolve_model(llm.base)
        whole = adapter is not None and is_full_model(adapter)
        model, adapter = (Path(adapter), None) if whole else (base, adapter)
        with loading():
            engine = VLLMEngine(model, adapter, tokenizer, llm.vllm, llm.generation.seed, scoring, tokenizer_dir=base)
    else:
        model = load_model(llm.base, adapter, scoring=scoring)
        engine = HFEngine(model, tokenizer, llm.generation.batch_size, progress)
    work_begins()
    return engine


def validator_probs(llm: LLMConfig, validator, frame: pd.DataFrame, reccots: list[str], source: str, progress=True):
    """(len(frame), 2): V's P(Yes), P(No) for each sample's Rec prompt with its RecCoT."""
    return validators_probs(llm, [validator], frame, reccots, source, progress)[0]


def validators_probs(
    llm: LLMConfig, validators: Sequence, frame: pd.DataFrame, reccots: list[str], source: str, progress=True
) -> list[np.ndarray]:
    """validator_probs of each V (a rectune output) in `validators` on the same prompts. LoRA adapters
    share one load of the base (the engine switches adapters); a whole model (full fine-tuning)
    takes a load of its own."""
    engine, prompts, probs = None, None, []
    for validator in validators:
        if engine is None or not engine.use_adapter(adapter_of(validator)):
            engine = None  # the last one's memory goes before the next loads (a whole model, on a GPU)
            engine = open_engine(llm, validator, progress, scoring=True)
        prompts = prompts or prompt_builder(llm, engine.tokenizer, source).rec(frame, reccots)
        probs.append(engine.yes_no_probs(prompts))
    return probs


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2))
