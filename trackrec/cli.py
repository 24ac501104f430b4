"""The `trackrec` command line."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trackrec.config import load_config
from trackrec.errors import TrackRecError

app = typer.Typer(help="TrackRec: RecCoT generation aligned to the recommender.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets: statistics and preparation.", no_args_is_help=True)
ctr_app = typer.Typer(help="CTR backbones.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(ctr_app, name="ctr")
console = Console()
ConfigPath = Annotated[Path, typer.Option("--config", "-c", help="YAML config")]


def user_errors(command):
    """Print a TrackRecError as one clear message and exit 2, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TrackRecError as e:
            console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
            raise typer.Exit(2) from e

    return wrapper


@data_app.command("stats")
@user_errors
def data_stats(
    dataset: Annotated[str, typer.Option(help="dataset name")] = "collm-ml1m",
    root: Annotated[Path | None, typer.Option(help="data folder (default $TRACKREC_DATA_DIR)")] = None,
):
    """Row, user and item counts of a public dataset (the paper's Table 1)."""
    from trackrec.data.collm import collm_stats, read_collm
    from trackrec.paths import data_dir

    if dataset != "collm-ml1m":
        raise TrackRecError(f"unknown dataset {dataset!r}; known: ['collm-ml1m']")
    stats = collm_stats(read_collm(data_dir(root)))
    table = Table(title=f"{dataset} (users and items are max id + 1, padding id included)")
    for key in stats:
        table.add_column(key, justify="right")
    table.add_row(*(f"{v:,}" for v in stats.values()))
    console.print(table)


@data_app.command("prepare")
@user_errors
def data_prepare(config: ConfigPath, output: Annotated[Path, typer.Option(help="output folder")]):
    """Write canonical train/valid/test samples and the item table."""
    from trackrec.data.dataset import DataConfig
    from trackrec.stages.prepare_data import prepare_data

    dataset = prepare_data(load_config(config, DataConfig), output)
    console.print(f"wrote {dataset.meta['rows']} to {output}")


@ctr_app.command("train")
@user_errors
def ctr_train(
    config: ConfigPath,
    dataset: Annotated[Path, typer.Option(help="prepared dataset folder")],
    output: Annotated[Path, typer.Option(help="output folder")],
):
    """Train one backbone; early stopping on valid; test AUC/ACC/LogLoss."""
    from trackrec.stages.train_ctr import CTRConfig, train_ctr

    result = train_ctr(dataset, load_config(config, CTRConfig), output)
    console.print({"backbone": result["backbone"], **result["test"], "best_epoch": result["best_epoch"]})


@app.command("run")
@user_errors
def run(config: ConfigPath = Path("configs/local.yaml")):
    """Run the main job on one machine (the embedded default)."""
    from trackrec.run import RunConfig
    from trackrec.run import run as run_job

    result = run_job(load_config(config, RunConfig), log=console.print)
    for row in result.get("llm", []):
        console.print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    console.print(f"done: {result['ctr']['backbone']} test {result['ctr']['test']}")
