"""The `trackrec` command: the CLI's commands (trackrec/cli.py) and its A/B-test commands
(trackrec/experiment_cli.py, which reuses the CLI's helpers), joined in one app."""

from trackrec.cli import app
from trackrec.experiment_cli import experiment_app

app.add_typer(experiment_app, name="experiment")
