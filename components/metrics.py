"""Numbers for a KFP Metrics artifact: logged (KFP's UI shows them) and written to its file."""

from __future__ import annotations

import json
from pathlib import Path


def log_metrics(artifact, values: dict) -> dict:
    """Log every number of `values` (counts as floats: KFP's Metrics hold only those; flags and text
    are left to the task's card) on `artifact`, and write them to its path too: `kfp.local`'s cache
    treats an output without a file as missing."""
    numbers = {k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    for key, value in numbers.items():
        artifact.log_metric(key, value)
    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    Path(artifact.path).write_text(json.dumps(numbers, indent=2))
    return numbers
