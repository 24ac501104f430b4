"""Experiments recorded in the feature store's registry, beside the arms they freeze.

An experiment is a FeatureService `exp_<name>` over its arms' version views, its definition (JSON)
in its tags: every pod that reads the registry (the publish stage, the feature server's readers,
the CLI) sees the same experiments. While one runs, its arms are frozen: `arms.assign`,
`promote` and `rollback` refuse to move them unless forced, and the publish stage publishes new
versions without pointing a frozen arm at them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from trackrec.experiments.assignment import Experiment, ExperimentError
from trackrec.features import definitions

PREFIX = definitions.EXPERIMENT_PREFIX


def _service_name(name: str) -> str:
    return PREFIX + definitions.checked_name("experiment", name)


def _save(store, experiment: Experiment) -> None:
    """Under the writer lease: the experiment's FeatureService, applied."""
    from feast import FeatureService

    from trackrec.features.lease import confirm

    confirm(store)
    feast = store.feast
    views = [feast.get_feature_view(definitions.view_name(v)) for v in {a.feature_version for a in experiment.arms}]
    tags = {
        "experiment": experiment.name,
        "definition": experiment.to_json(),
        "status": experiment.status,
        "arms": ",".join(a.name for a in experiment.arms),  # what the features layer reads to freeze them
    }
    feast.apply([FeatureService(name=_service_name(experiment.name), features=views, tags=tags)])


def experiments(feast) -> list[Experiment]:
    """Every recorded experiment, oldest start first."""
    found = [
        Experiment.from_json(s.tags["definition"])
        for s in feast.list_feature_services()
        if s.name.startswith(PREFIX) and "definition" in s.tags
    ]
    return sorted(found, key=lambda e: e.start)


def get(feast, name: str) -> Experiment:
    for experiment in experiments(feast):
        if experiment.name == name:
            return experiment
    raise ExperimentError(f"no experiment {name!r}: see `trackrec experiment list`")


def running(feast) -> list[Experiment]:
    return [e for e in experiments(feast) if e.running]


def frozen_by(feast, arm: str) -> str | None:
    """The running experiment that holds `arm`, if any."""
    return definitions.experiment_holding(feast, arm)


def start(store, experiment: Experiment, force: bool = False) -> Experiment:
    """Point each arm at its version and model, then record the experiment (running). Refused while
    another running experiment holds one of its arms, unless `force` (which stops that one first)."""
    from trackrec.features.arms import assign
    from trackrec.features.lease import writer

    with writer(store, f"experiment start {experiment.name}"):  # the check and the writes as one
        feast = store.feast
        if any(e.name == experiment.name for e in experiments(feast)):
            raise ExperimentError(f"experiment {experiment.name!r} exists; a new treatment is a new experiment name")
        for other in running(feast):
            shared = {a.name for a in other.arms} & {a.name for a in experiment.arms}
            if shared and not force:
                raise ExperimentError(
                    f"experiment {other.name!r} is running on arm(s) {sorted(shared)}: stop it first "
                    "(`trackrec experiment stop`), or start with --force to stop it"
                )
            if shared:
                _save(store, other.stopped(_now()))
        for arm in experiment.arms:
            assign(store, arm.name, arm.feature_version, model=arm.model)
        _save(store, experiment)
        return experiment


def stop(store, name: str) -> Experiment:
    """Mark the experiment stopped: its arms can move again (promote, a new experiment)."""
    from trackrec.features.lease import writer

    with writer(store, f"experiment stop {name}"):
        experiment = get(store.feast, name)
        if not experiment.running:
            raise ExperimentError(f"experiment {name!r} was stopped at {experiment.stopped_at}")
        stopped = experiment.stopped(_now())
        _save(store, stopped)
        return stopped


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
