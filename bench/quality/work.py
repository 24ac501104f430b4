"""The bench's work folder and its profiles (the sizes each machine runs at)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trackrec.stages.outputs import Greedy

SPLITS = ("train", "valid", "eval")  # the selected samples V trains on, chooses on, is judged on


@dataclass(frozen=True)
class Profile:
    """Sizes: rows V trains on (train_per_user latest train samples of each drawn user), held-out
    users x samples, the learning rates tried per capacity (chosen on the valid split), G0's
    distillation rows and batch, the alignment users, N, rounds, and the judges' users."""

    train_samples: int
    train_per_user: int
    eval_users: int
    eval_per_user: int
    learning_rates: dict[str, tuple[float, ...]]
    history_tokens: int
    max_new_tokens: int
    distill_rows: int
    distill_batch: int
    align_users: int
    samples: int
    rounds: int
    judge_users: int
    judge_per_user: int
    batch_size: int


# this 2-core CPU, about 1 hour: 0.4k prompt tokens/s forward, 1.5 s per Rec-tuning row (top 6 layers)
CPU = Profile(
    train_samples=80,
    train_per_user=2,
    eval_users=30,
    eval_per_user=3,
    learning_rates={"top6": (3e-4, 1e-3), "all": (3e-4,), "full": (3e-5,)},
    history_tokens=384,
    max_new_tokens=128,
    distill_rows=100,
    distill_batch=1,
    align_users=24,
    samples=8,
    rounds=1,
    judge_users=24,
    judge_per_user=2,
    batch_size=8,
)
PROFILES = {
    "cpu": CPU,
    # one H100/H200, within 8 minutes of device time
    "gpu": dataclasses.replace(
        CPU,
        train_samples=600,
        train_per_user=3,
        eval_users=320,
        learning_rates={"top6": (3e-4, 1e-3, 3e-3), "all": (1e-4, 3e-4, 1e-3), "full": (1e-5, 3e-5, 1e-4)},
        history_tokens=1024,
        distill_rows=400,
        distill_batch=4,
        align_users=128,
        rounds=2,
        judge_users=150,
        judge_per_user=3,
        batch_size=64,
    ),
    # minutes: every step runs (whether it means anything or not), to check the bench itself
    "smoke": dataclasses.replace(
        CPU,
        train_samples=8,
        eval_users=6,
        eval_per_user=2,
        learning_rates={"top6": (1e-3,), "all": (3e-4,), "full": (3e-5,)},
        history_tokens=128,
        max_new_tokens=16,
        distill_rows=4,
        align_users=4,
        samples=2,
        rounds=2,
        judge_users=4,
    ),
}


class Work:
    """The bench's stage outputs under one folder; a finished step (its folder exists) is not re-run."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.seconds: dict[str, float] = {}

    def step(self, name: str, run: Callable[[Path], object]) -> Path:
        folder = self.root / name
        if not folder.exists():
            # written under another name and renamed when done: a step killed half-way is re-run
            partial = self.root / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            start = time.perf_counter()
            run(partial)
            if not partial.exists():  # a stage that writes nothing of its own (a table step)
                partial.mkdir()
            partial.rename(folder)
            self.seconds[name] = time.perf_counter() - start
            print(f"[bench] {name}: {self.seconds[name]:.0f} s", flush=True)
        return folder

    def texts(self, name: str, frames: dict[str, pd.DataFrame], write: Callable[[str, pd.DataFrame], list[str]]):
        """A folder of summaries shaped as the greedy stage's (split, sample, reccot), one per row of
        each split's frame."""

        def run(folder: Path) -> None:
            tables = [
                pd.DataFrame({"split": split, "sample": frame.index, "reccot": write(split, frame)})
                for split, frame in frames.items()
            ]
            folder.mkdir()
            pd.concat(tables, ignore_index=True).to_parquet(Greedy(folder).table)

        return self.step(name, run)
