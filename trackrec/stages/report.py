"""Stage report: the run's report, once the final CTR model and the published version are known."""

from __future__ import annotations

import json
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.ctr.saved import trained_metrics
from trackrec.llm.report import ROWS, write_report
from trackrec.stages.publish import SUMMARY


def final_report(
    loop_dir: str | Path, ctr_model_dir: str | Path, published_dir: str | Path | None, output: str | Path
) -> Path:
    """The loop's rows (the last evaluate task's report folder), the final CTR model's lift against
    its permuted-vector control (none when it trained without vectors) and publish's summary (none
    without the feature stages) as report.html and card.md in `output`."""
    rows = json.loads((Path(loop_dir) / ROWS).read_text())
    lift = trained_metrics(ctr_model_dir).get("lift")
    published = None if published_dir is None else json.loads((Path(published_dir) / SUMMARY).read_text())
    with atomic_dir(output) as tmp:
        write_report(rows, tmp, lift=lift, published=published)
    return Path(output)
