"""Upload the compiled pipeline to a KFP server, start a run, schedule the recurring one."""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import urllib3

from trackrec.errors import TrackRecError

CRON_FIELDS = 6  # KFP's cron: seconds first


class KFPError(TrackRecError):
    """A KFP endpoint that cannot be reached or refuses a call."""


@dataclass(frozen=True)
class Uploaded:
    pipeline_id: str
    version_id: str
    version_name: str


def connect(host: str):
    """A kfp.Client for `host`; an unreachable one is reported by the first call."""
    import kfp

    return _call(host, "the connection", kfp.Client, host)


def _call(host: str, what: str, function, *args, **kwargs):
    """Run one client call; an unreachable host or an API error becomes a KFPError naming both."""
    from kfp_server_api.exceptions import ApiException

    try:
        return function(*args, **kwargs)
    except urllib3.exceptions.HTTPError as error:
        raise KFPError(f"KFP endpoint {host} is unreachable ({what}): {error}") from error
    except ApiException as error:
        raise KFPError(
            f"KFP endpoint {host} refused {what}: HTTP {error.status} {error.reason}: {error.body}"
        ) from error


def upload(client, host: str, package: str | Path, name: str) -> Uploaded:
    """The pipeline `name` with a version for this package (named by its content, so uploading the
    same YAML twice reuses the version)."""
    package = str(package)
    version_name = f"{name}-{hashlib.sha256(Path(package).read_bytes()).hexdigest()[:12]}"
    pipeline_id = _call(host, "the pipeline lookup", client.get_pipeline_id, name)
    if pipeline_id is None:
        created = _call(host, "the pipeline upload", client.upload_pipeline, package, pipeline_name=name)
        pipeline_id = created.pipeline_id
        versions = _call(host, "the version listing", client.list_pipeline_versions, pipeline_id)
        return Uploaded(
            pipeline_id, versions.pipeline_versions[0].pipeline_version_id, versions.pipeline_versions[0].display_name
        )
    for version in _listed_versions(client, host, pipeline_id, version_name):
        return Uploaded(pipeline_id, version.pipeline_version_id, version_name)
    version = _call(
        host, "the version upload", client.upload_pipeline_version, package, version_name, pipeline_id=pipeline_id
    )
    return Uploaded(pipeline_id, version.pipeline_version_id, version_name)


def _listed_versions(client, host: str, pipeline_id: str, version_name: str) -> list:
    by_name = json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": version_name}]})
    listed = _call(host, "the version listing", client.list_pipeline_versions, pipeline_id, filter=by_name)
    return listed.pipeline_versions or []


def ui_link(host: str, run_id: str) -> str:
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def submit(host: str, package: str | Path, params: dict, experiment: str, name: str = "trackrec") -> dict:
    """Upload (or reuse) the pipeline version and start one run in `experiment`; returns ids and the UI link."""
    client = connect(host)
    uploaded = upload(client, host, package, name)
    experiment_id = _call(host, "the experiment", client.create_experiment, experiment).experiment_id
    run = _call(
        host,
        "the run",
        client.run_pipeline,
        experiment_id,
        f"{uploaded.version_name}-run",
        params=params,
        pipeline_id=uploaded.pipeline_id,
        version_id=uploaded.version_id,
    )
    return {
        "pipeline_id": uploaded.pipeline_id,
        "version_id": uploaded.version_id,
        "run_id": run.run_id,
        "link": ui_link(host, run.run_id),
    }


def check_cron(cron: str) -> str:
    fields = cron.split()
    if len(fields) != CRON_FIELDS or not all(re.fullmatch(r"[0-9*/,?LW#A-Za-z-]+", f) for f in fields):
        raise KFPError(
            f"cron {cron!r}: KFP's cron has {CRON_FIELDS} fields, seconds first "
            f"(got {len(fields)}); e.g. '0 0 3 * * *' is every day at 03:00"
        )
    return cron


def schedule(
    host: str,
    package: str | Path,
    params: dict,
    experiment: str,
    cron: str,
    job: str = "trackrec-active-users",
    name: str = "trackrec",
) -> dict:
    """Create the recurring run `job` (replacing one of that name): `cron`, one run at a time, no
    catch-up of missed runs."""
    check_cron(cron)
    client = connect(host)
    uploaded = upload(client, host, package, name)
    experiment_id = _call(host, "the experiment", client.create_experiment, experiment).experiment_id
    replaced = []
    listed = _call(host, "the recurring-run listing", client.list_recurring_runs, experiment_id=experiment_id)
    for existing in listed.recurring_runs or []:
        if existing.display_name == job:
            _call(host, "the recurring-run deletion", client.delete_recurring_run, existing.recurring_run_id)
            replaced.append(existing.recurring_run_id)
    created = _call(
        host,
        "the recurring run",
        client.create_recurring_run,
        experiment_id,
        job,
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        params=params,
        pipeline_id=uploaded.pipeline_id,
        version_id=uploaded.version_id,
    )
    return {"recurring_run_id": created.recurring_run_id, "version_id": uploaded.version_id, "replaced": replaced}
