"""Component of the run's report: the page and the card KFP's UI shows for the whole run."""

from kfp.dsl import HTML, Artifact, Input, Markdown, Metrics, Output

from components.stage import stage


@stage("cpu")
def report(
    loop: Input[Artifact], ctr: Input[Metrics], page: Output[HTML], card: Output[Markdown],
    published: Input[Artifact] = None,
):  # fmt: skip
    """The headline (the final CTR model's lift against its control, V against the prior), what was
    published, and the loop's charts and table: `loop`, the last evaluate task's report; `ctr`, the
    final CTR model's metrics."""
    import shutil
    import tempfile
    from pathlib import Path

    from trackrec.stages.report import final_report

    with tempfile.TemporaryDirectory() as folder:
        written = final_report(loop.path, ctr.path, published and published.path, Path(folder) / "report")
        shutil.copyfile(written.page, page.path)
        shutil.copyfile(written.card, card.path)
