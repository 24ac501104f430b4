"""The main job on one machine: a plain sequence of stage calls, every artifact in one run folder.

A stage whose output folder is complete (written atomically) is skipped on a re-run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trackrec.config import Config, config_to_dict, field
from trackrec.data.dataset import DataConfig
from trackrec.stages.prepare_data import prepare_data
from trackrec.stages.train_ctr import CTRConfig, train_ctr


@dataclass
class RunConfig(Config):
    run_dir: str = field("runs/local", help="folder that receives every artifact of the run")
    data: DataConfig = field(factory=DataConfig, help="prepare_data stage")
    ctr: CTRConfig = field(factory=CTRConfig, help="train_ctr stage")


def _done_with(record: Path, config: Config) -> bool:
    """A stage is done when its output (written atomically) exists and was built from this config."""
    return record.exists() and json.loads(record.read_text()).get("config") == config_to_dict(config)


def _newer(upstream: Path, downstream: Path) -> bool:
    return upstream.stat().st_mtime > downstream.stat().st_mtime


def run(config: RunConfig, log=print) -> dict:
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(config), indent=2))
    dataset_dir, ctr_dir = run_dir / "data", run_dir / "ctr"
    if _done_with(dataset_dir / "meta.json", config.data):
        log(f"prepare_data: {dataset_dir} is complete, skipped")
    else:
        dataset = prepare_data(config.data, dataset_dir)
        log(f"prepare_data: {dataset.meta['rows']} -> {dataset_dir}")
    if _done_with(ctr_dir / "metrics.json", config.ctr) and not _newer(dataset_dir, ctr_dir):
        log(f"train_ctr: {ctr_dir} is complete, skipped")
        return json.loads((ctr_dir / "metrics.json").read_text())
    result = train_ctr(dataset_dir, config.ctr, ctr_dir)
    log(f"train_ctr: {config.ctr.backbone} test {result['test']} -> {ctr_dir}")
    return result
