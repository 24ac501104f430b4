"""Components around a sharded stage: plan the user shards, gather their outputs."""

from typing import List

from kfp.dsl import Dataset, Input, Output

from components.stage import stage


@stage("cpu")
def plan_shards(shards: int) -> List[int]:
    """The shard indices the inference stages fan out over (a count below 1 fails here, first)."""
    from trackrec.stages.shards import Shard

    return list(range(Shard(0, shards).count))


@stage("cpu")
def gather(parts: Input[List[Dataset]], kind: str, gathered: Output[Dataset]):
    """The shards of a sharded stage as one folder; `kind`: the stage's output description
    (module:name of a trackrec.stages.outputs.Output)."""
    from trackrec.stages.gather import gather as run

    run([part.path for part in parts], kind, gathered.path)
