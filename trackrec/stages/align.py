"""Stage align (eq. 4): S-DPO of G(t-1) on the scored preferences, reference G(t-1); writes G(t)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from trackrec.atomic import atomic_dir
from trackrec.llm.adapters import load_model, load_tokenizer
from trackrec.llm.config import LLMConfig
from trackrec.llm.distributed import is_main_process
from trackrec.llm.training import align as train_sdpo
from trackrec.stages.llm_common import adapter_of, write_json, write_trained
from trackrec.stages.outputs import Scored, Trained
from trackrec.timing import work_begins


def align(scored: str | Path, previous: str | Path, llm: LLMConfig, output: str | Path) -> list[dict]:
    """G(t) from G(t-1) (`previous`, a training stage's output) on the Scored preferences; writes
    Trained (its adapter and trl's training log)."""
    table = pd.read_parquet(Scored(scored).required("preferences"))
    columns = ["prompt", "chosen", "rejected", "chosen_finished", "rejected_finished"]
    rows = [{name: getattr(r, name) for name in columns} for r in table.itertuples(index=False)]
    rows = [r | {"rejected": list(r["rejected"]), "rejected_finished": list(r["rejected_finished"])} for r in rows]
    if not rows:  # every sample was a tie: nothing to learn, G(t) = G(t-1)
        if not is_main_process():
            return []
        with atomic_dir(output) as tmp:
            shutil.copytree(adapter_of(previous), Trained(tmp).adapter)
            write_json(Trained(tmp).log, [])
        return []
    model = load_model(llm.base, adapter_of(previous), trainable=True)
    work_begins()
    return write_trained(model, train_sdpo(model, load_tokenizer(llm.base), rows, llm.align_train, llm.beta), output)
