"""Stage report: the run's report, once the final CTR model and the published version are known."""

from __future__ import annotations

import json
from pathlib import Path

from trackrec.atomic import atomic_dir
from trackrec.llm.report import write_report
from trackrec.stages.outputs import Published, Report


def final_report(loop: str | Path, ctr: str | Path, published: str | Path | None, output: str | Path) -> Report:
    """The loop's rows (the last evaluate task's Report), the final CTR model's test metrics
    (train_ctr's Metrics file: with its lift against the permuted-vector control when it trained
    with vectors) and Published's summary (none without the feature stages) as a Report in `output`."""
    rows = json.loads(Report(loop).required("rows").read_text())
    metrics = json.loads(Path(ctr).read_text())
    summary = None if published is None else json.loads(Published(published).required("summary").read_text())
    with atomic_dir(output) as tmp:
        write_report(rows, Report(tmp), ctr=metrics, published=summary)
    return Report(output)
