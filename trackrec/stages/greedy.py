"""Stage greedy: one RecCoT per train and eval sample from G(t), by greedy decoding."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.llm.config import LLMConfig
from trackrec.stages.llm_common import open_engine, prompt_builder, read_samples
from trackrec.stages.outputs import Greedy
from trackrec.stages.shards import WHOLE, Shard

SPLITS = ("train", "eval")


def greedy(
    samples: str | Path,
    generator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    progress=True,
    shard: Shard = WHOLE,
) -> int:
    """Writes Greedy: split, the sample's index, its RecCoT by G (`generator`, a training stage's
    output), for the Selected `samples`."""
    frames = {split: read_samples(samples, split, shard) for split in SPLITS}
    engine = None if all(f.empty for f in frames.values()) else open_engine(llm, generator, progress)
    tables = []
    for split, frame in frames.items():
        reccots = []
        if not frame.empty:
            prompts = prompt_builder(llm, engine.tokenizer, f"{split} samples").reccot(frame)
            reccots = engine.greedy(prompts, llm.generation.max_new_tokens)
        tables.append(pd.DataFrame({"split": split, "sample": frame.index, "reccot": reccots}))
    table = pd.concat(tables, ignore_index=True)
    with atomic_dir(output) as tmp:
        table.to_parquet(Greedy(tmp).table)
    return len(table)


def read_reccots(greedy: str | Path, split: str, frame: pd.DataFrame) -> list[str]:
    """The Greedy RecCoTs of `split`, in the order of `frame`'s rows."""
    table = pd.read_parquet(Greedy(greedy).required("table"))
    return table[table.split == split].set_index("sample").reccot.loc[frame.index].tolist()
