"""Stage sample (Algorithm 1, first half): N RecCoTs per train sample from G(t-1)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.llm.config import LLMConfig
from trackrec.stages.llm_common import alignment_samples, open_engine, prompt_builder
from trackrec.stages.outputs import Sampled
from trackrec.stages.shards import WHOLE, Shard


def sample(
    samples: str | Path,
    generator: str | Path,
    llm: LLMConfig,
    output: str | Path,
    seed: int,
    progress=True,
    shard: Shard = WHOLE,
    iteration: int = 1,
) -> int:
    """Writes Sampled: the index of round `iteration`'s alignment samples (of the Selected `samples`),
    their round, RecCoT prompt, N RecCoTs from G (`generator`, a training stage's output) and whether
    each finished."""
    frame = alignment_samples(samples, iteration, shard)
    prompts, drawn = [], []
    if not frame.empty:  # a shard may hold no user
        engine = open_engine(llm, generator, progress)
        prompts = prompt_builder(llm, engine.tokenizer, "train samples").reccot(frame)
        gen = llm.generation
        drawn = engine.sample(prompts, gen.samples, gen.temperature, gen.top_p, gen.max_new_tokens, seed + shard.index)
    table = pd.DataFrame(
        {
            "prompt": prompts,
            "reccots": [[c.text for c in row] for row in drawn],
            "finished": [[c.finished for c in row] for row in drawn],
            "round": iteration,
        },
        index=frame.index,
    )
    with atomic_dir(output) as tmp:
        table.to_parquet(Sampled(tmp).table)
    return len(prompts)
