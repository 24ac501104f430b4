"""Which users one shard of a sharded inference stage (sample, score, greedy, summarize) reads.

A user belongs to shard `user_id % count`, so every sample of a user stays in one shard. Gathered
greedy RecCoTs and rewards equal the unsharded ones; sampled RecCoTs are other draws of the same
distribution (each shard seeds its own generator).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from trackrec.errors import ConfigError


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError("shards", [f"the shard count must be >= 1, got {self.count}"])
        if not 0 <= self.index < self.count:
            raise ConfigError("shards", [f"shard index {self.index} is outside 0..{self.count - 1}"])

    def of(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of `frame` (with a user_id column) that belong to this shard."""
        return frame if self.count == 1 else frame[frame.user_id % self.count == self.index]


WHOLE = Shard()
