"""`trackrec experiment ...`: A/B tests of feature versions, from start to readout (docs/experiments.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trackrec.cli import StorePath, _opened, console, shown, user_errors
from trackrec.errors import TrackRecError

experiment_app = typer.Typer(
    help="A/B experiments: arms (feature version + model), user -> arm, replay, readout.", no_args_is_help=True
)
Name = Annotated[str, typer.Option("--name", help="the experiment's name")]
Definition = Annotated[
    Path | None, typer.Option(help="an experiment's JSON (`experiment show --json`), instead of --store and --name")
]
OptionalStore = Annotated[Path | None, typer.Option("--store", help="feature store YAML (StoreConfig)")]


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise TrackRecError(f"--{what}: expected ARM=VALUE, got {value!r}")
        pairs[key] = rest
    return pairs


def _experiment(store: Path | None, name: str | None, definition: Path | None):
    from trackrec.experiments.assignment import Experiment
    from trackrec.experiments.registry import get

    if definition is not None:
        return Experiment.from_json(definition.read_text())
    if store is None or name is None:
        raise TrackRecError("give --definition, or --store and --name")
    return get(_opened(store, registry_only=True).feast, name)


@experiment_app.command("start")
@user_errors
def start(
    store: StorePath,
    name: Name,
    salt: Annotated[str, typer.Option(help="the hash's salt: a new salt reshuffles users (default: the name)")] = "",
    arm: Annotated[list[str] | None, typer.Option(help="ARM=VERSION, control first (repeat)")] = None,
    model: Annotated[list[str] | None, typer.Option(help="ARM=MODEL folder trained on its version (repeat)")] = None,
    share: Annotated[list[str] | None, typer.Option(help="ARM=SHARE of traffic (default: equal)")] = None,
    force: Annotated[bool, typer.Option(help="stop a running experiment on the same arms")] = False,
):
    """Start an experiment: point each arm at its version and model, freeze them, record it."""
    from datetime import UTC, datetime

    from trackrec.experiments.assignment import ArmSpec, Experiment
    from trackrec.experiments.registry import start as start_experiment

    versions, models, shares = _pairs(arm, "arm"), _pairs(model, "model"), _pairs(share, "share")
    missing = sorted(set(versions) - set(models))
    if missing:
        raise TrackRecError(f"--model: each arm needs the model trained on its version; missing for {missing}")
    specs = tuple(
        ArmSpec(n, v, models[n], float(shares.get(n, 1 / len(versions)))) for n, v in versions.items()
    )  # fmt: skip
    now = datetime.now(UTC).isoformat(timespec="seconds")
    experiment = start_experiment(_opened(store), Experiment(name, salt or name, specs, now), force)
    console.print_json(experiment.to_json())


@experiment_app.command("list")
@user_errors
def list_(store: StorePath):
    """Every experiment: status, arms, versions, models, shares."""
    from trackrec.experiments.registry import experiments

    table = Table()
    for column in ("experiment", "status", "start", "arm", "feature version", "model", "share"):
        table.add_column(column)
    for experiment in experiments(_opened(store, registry_only=True).feast):
        for a in experiment.arms:
            row = (experiment.name, experiment.status, experiment.start, a.name, a.feature_version, a.model)
            table.add_row(*map(shown, row), f"{a.share:.0%}")
    console.print(table)


@experiment_app.command("show")
@user_errors
def show(
    store: StorePath,
    name: Name,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the definition here (for rankers)")] = None,
):
    """An experiment's definition (JSON): what any service needs to recompute user -> arm."""
    experiment = _experiment(store, name, None)
    if json_out is not None:
        json_out.write_text(experiment.to_json())
    console.print_json(experiment.to_json())


@experiment_app.command("which")
@user_errors
def which(
    user: Annotated[list[int], typer.Option(help="user id (repeat for several)")],
    store: OptionalStore = None,
    name: Annotated[str | None, typer.Option(help="the experiment's name")] = None,
    definition: Definition = None,
):
    """Which arm each user is in, and the feature version and model that arm scores with."""
    experiment = _experiment(store, name, definition)
    for user_id in user:
        a = experiment.arm_of(user_id)
        console.print({"user_id": user_id, "arm": a.name, "feature_version": a.feature_version, "model": a.model})


@experiment_app.command("read")
@user_errors
def read(
    user: Annotated[int, typer.Option(help="user id")],
    url: Annotated[str, typer.Option(help="the read-only feature server")] = "http://127.0.0.1:6566",
    definition: Definition = None,
    store: OptionalStore = None,
    name: Annotated[str | None, typer.Option(help="the experiment's name")] = None,
    ttl_days: Annotated[int | None, typer.Option(help="the store's TTL: an older snapshot is a miss")] = None,
):
    """Read a user's arm features as a ranker does: over HTTP from the read-only feature server."""
    from trackrec.experiments.client import ArmClient

    got = ArmClient(url, _experiment(store, name, definition), ttl_days).read(user)
    vector = "miss: serve zeros" if got.embedding is None else f"{got.embedding.size} floats"
    console.print({"user_id": got.user_id, "arm": got.arm, "feature_version": got.feature_version})
    console.print({"model": got.model, "as_of": got.as_of, "embedding": vector})


@experiment_app.command("stop")
@user_errors
def stop(
    store: StorePath,
    name: Name,
    promote: Annotated[
        str | None, typer.Option(help="then the control reads this arm's version and model (the winner)")
    ] = None,
):
    """Stop an experiment (its arms can move again); optionally promote its winning arm."""
    from trackrec.experiments.registry import stop as stop_experiment
    from trackrec.features.arms import promote as promote_arm

    opened = _opened(store)
    experiment = stop_experiment(opened, name)
    console.print({"experiment": name, "status": experiment.status, "stopped_at": experiment.stopped_at})
    if promote is not None:
        console.print(promote_arm(opened, experiment.arm(promote).name, experiment.control.name))


@experiment_app.command("simulate")
@user_errors
def simulate(
    store: StorePath,
    name: Name,
    dataset: Annotated[Path, typer.Option(help="prepared dataset whose split is replayed")],
    output: Annotated[Path, typer.Option(help="the exposure log (parquet)")],
    split: Annotated[str, typer.Option(help="the hold-out split to replay")] = "test",
):
    """Write an exposure log by replaying a split's logged impressions under the experiment (offline:
    prediction quality per arm, not the causal effect of ranking)."""
    from trackrec.experiments import exposures
    from trackrec.experiments.registry import get
    from trackrec.experiments.simulate import replay

    opened = _opened(store, registry_only=True)
    log = replay(get(opened.feast, name), dataset, opened, split)
    console.print(
        f"wrote {len(log):,} impressions of {log.user_id.nunique():,} users to {exposures.write(log, output)}"
    )


@experiment_app.command("report")
@user_errors
def report(
    exposures_path: Annotated[Path, typer.Option("--exposures", help="exposure log parquet")],
    output: Annotated[Path, typer.Option(help="the HTML report")],
    store: OptionalStore = None,
    name: Annotated[str | None, typer.Option(help="the experiment's name")] = None,
    definition: Definition = None,
    markdown: Annotated[Path | None, typer.Option(help="also the Markdown (a KFP Markdown artifact)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also every number as JSON")] = None,
    replayed: Annotated[bool, typer.Option(help="the log is an offline replay (said on the page)")] = False,
):
    """The readout: per arm CTR and CVR, lift with intervals, SRM, guardrails, the decision."""
    from trackrec.experiments import exposures
    from trackrec.experiments.readout import readout
    from trackrec.experiments.report import markdown as as_markdown
    from trackrec.experiments.report import rows, write_html

    result = readout(_experiment(store, name, definition), exposures.read(exposures_path))
    table = Table(title=shown(f"{result.experiment}: {result.decision}"))
    headline = rows(result)
    for column in headline[0]:
        table.add_column(column, justify="right")
    for row in headline:
        table.add_row(*map(shown, row.values()))  # arm names come with the definition
    console.print(table)
    console.print(f"report: {write_html(result, output, replayed)}")
    if markdown is not None:
        markdown.write_text(as_markdown(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2, default=float))
    if result.decision == "stop" and any(c.reason == "sample ratio mismatch" for c in result.comparisons):
        raise typer.Exit(3)  # the readout is stopped: a pipeline step fails on it
