"""The experiment readout as a KFP task: for a pipeline that collects an exposure log (a ranker's
logs, or `trackrec experiment simulate`) and reads it out, with the report in KFP's UI."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output


def experiment_report(
    exposures: Input[Dataset],
    definition: str,
    report: Output[HTML],
    card: Output[Markdown],
    numbers: Output[Metrics],
    replayed: bool = False,
):
    """The readout of `exposures` (the exposure-log parquet) under the experiment `definition`
    (`trackrec experiment show --json`): the HTML report, a Markdown card with the table a product
    owner reads first, and the SRM p-value and lifts with their intervals as metrics."""
    from pathlib import Path

    from components.metrics import log_metrics
    from trackrec.experiments import exposures as exposure_log
    from trackrec.experiments.assignment import Experiment
    from trackrec.experiments.readout import readout
    from trackrec.experiments.report import markdown, metric_values, write_html

    result = readout(Experiment.from_json(definition), exposure_log.read(exposures.path))
    write_html(result, report.path, replayed)
    Path(card.path).write_text(markdown(result))
    log_metrics(numbers, metric_values(result))


def report_component(image: str):
    """The readout component running in `image` (the settings' cpu image: trackrec and kfp inside)."""
    return dsl.component(experiment_report, base_image=image, install_kfp_package=False)
