"""Which users one shard of a sharded inference stage (sample, score, greedy, summarize) reads.

User ids 0..n-1 are cut into `count` contiguous ranges and a user belongs to the shard of its range,
so every sample of a user stays in one shard, and a shard reading a prepared dataset (grouped by
user) reads only the row groups of its range: memory per shard falls with the shard count. Gathered
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

    def users(self, id_space: int) -> tuple[int, int]:
        """[low, high): the user ids of this shard when ids run 0..id_space-1."""
        step = -(-id_space // self.count)
        return self.index * step, (self.index + 1) * step

    def of(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of `frame` (with a user_id column) that belong to this shard; every shard reads the
        same frame, so its largest id fixes the same ranges in each."""
        if self.count == 1 or frame.empty:
            return frame
        low, high = self.users(int(frame.user_id.max()) + 1)
        return frame[(frame.user_id >= low) & (frame.user_id < high)]


WHOLE = Shard()
