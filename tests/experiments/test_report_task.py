"""The readout as a KFP task (kfp.local): an exposure log imported into a pipeline comes out as the
HTML report, a Markdown card and metrics, the numbers the command line reads."""

import json
from pathlib import Path

import pytest
from kfp import dsl, local

from components.experiments import report_component
from pipelines.settings import Images
from tests.experiments.test_assignment import experiment
from tests.experiments.world import exposures
from trackrec.experiments import exposures as exposure_log
from trackrec.experiments.readout import readout
from trackrec.experiments.report import metric_values


def test_the_readout_task_writes_the_report_card_and_metrics_kfps_ui_shows(tmp_path):
    shares = {"arm0": 0.55, "arm1": 0.45}  # a broken split: the card must say stop
    log = exposure_log.write(exposures({"arm0": (0.2, 0.3), "arm1": (0.24, 0.3)}, shares), tmp_path / "log.parquet")
    definition = experiment(0.5, 0.5).to_json()
    task = report_component(Images().cpu)

    @dsl.pipeline(name="experiment-readout")
    def readout_pipeline(definition: str):
        imported = dsl.importer(artifact_uri=str(log), artifact_class=dsl.Dataset, reimport=False)
        task(exposures=imported.output, definition=definition)

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    readout_pipeline(definition=definition)
    (folder,) = [p for p in (tmp_path / "root").glob("*/experiment-report") if p.is_dir()]
    expected = readout(experiment(0.5, 0.5), exposure_log.read(log))
    assert expected.decision == "stop"
    card = (folder / "card").read_text()
    assert card.startswith(f"**{expected.experiment}: stop**") and "| arm | users |" in card
    assert "Decision: <b>stop</b>" in (folder / "report").read_text()
    metrics = json.loads((folder / "numbers").read_text())
    assert metrics == pytest.approx(metric_values(expected)) and metrics["arm1_srm_pvalue"] < 1e-6
    assert Path(log).is_file()
