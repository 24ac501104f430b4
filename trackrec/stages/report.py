"""Stage report: the run's report, once the final CTR model and the published version are known."""

from __future__ import annotations

import json
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.llm.report import ROWS, write_report
from trackrec.stages.outputs import SUMMARY


def final_report(
    loop_dir: str | Path, ctr_metrics: str | Path, published_dir: str | Path | None, output: str | Path
) -> Path:
    """The loop's rows (the last evaluate task's report folder), the final CTR model's test metrics
    (train_ctr's Metrics file: with its lift against the permuted-vector control when it trained
    with vectors) and publish's summary (none without the feature stages) as report.html and card.md
    in `output`."""
    rows = json.loads((Path(loop_dir) / ROWS).read_text())
    ctr = json.loads(Path(ctr_metrics).read_text())
    published = None if published_dir is None else json.loads((Path(published_dir) / SUMMARY).read_text())
    with atomic_dir(output) as tmp:
        write_report(rows, tmp, ctr=ctr, published=published)
    return Path(output)
