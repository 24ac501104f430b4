"""Upload the compiled pipeline to a KFP server, start a run, schedule the recurring one.

Multi-user Kubeflow puts an auth proxy in front of the API and one profile namespace per team: a
call carries a bearer token (given, or the in-cluster ServiceAccount token projected for KFP's
audience) and names the namespace. Before any call, one GET of the health endpoint (redirects not
followed) turns a login redirect, a 401 or a 403 into one line that says what to set.

Every call has a connect and a read timeout, a deadline for the whole call (KFP_TIMEOUTS_S) and a
cap on its answer's size: an endpoint that goes silent, drips its answer or never ends it fails with
one line naming the call.
"""

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import urllib3

from trackrec.errors import TrackRecError

CRON_FIELDS = 6  # KFP's cron: seconds first
API = "/apis/v2beta1"
# Where a pod finds the token projected for KFP's audience (kfp's own convention and variable)
SA_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
SA_TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
TO_SET = "pass --token (or KF_PIPELINES_TOKEN), or run in a pod with a projected KFP token, and --namespace"


@dataclass(frozen=True)
class Timeouts:
    """Seconds a KFP call may take. urllib3's connect and read timeouts bound one socket operation
    each, so a server dripping a byte now and then never trips them: `health` and `call` bound the
    whole of one call."""

    connect: float  # to open the connection
    read: float  # of silence within one answer
    health: float  # the health check, from connecting to its last byte
    call: float  # one API call through kfp's client (an upload, a listing, a run's creation)


# KFP answers its API in well under a second and takes a few to store an upload or create a run; these
# are far above that and still fail a hung submit in minutes. kfp's client retries a GET that read
# nothing 3 times, so `call` is above 4 reads' silence.
KFP_TIMEOUTS_S = Timeouts(connect=10, read=30, health=30, call=180)
HEALTH_ANSWER_MAX = 64 * 1024  # KFP's is under 1 KiB; more is not KFP, and is not read
API_ANSWER_MAX = 64 * 1024**2  # the largest, 10 listed versions with their specs (~300 KiB each), is a few MiB


class KFPError(TrackRecError):
    """A KFP endpoint that cannot be reached or refuses a call."""


@dataclass(frozen=True)
class Access:
    """Where the KFP API is and how a call proves who makes it."""

    host: str
    token: str | None = None
    token_file: str | None = None  # re-read on each call: projected tokens rotate
    namespace: str | None = None
    ca_bundle: str | None = None
    service_account: str | None = None  # the runs' pods run as this ServiceAccount

    def bearer(self) -> str | None:
        if self.token:
            return self.token
        if self.token_file:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError as error:
                raise KFPError(f"KFP token file {self.token_file}: {error.strerror}") from error
        return None


def access(
    host: str,
    token: str | None = None,
    token_file: str | None = None,
    namespace: str | None = None,
    ca_bundle: str | None = None,
    service_account: str | None = None,
) -> Access:
    """An Access whose token is the one given, else the projected ServiceAccount token if the pod has one."""
    if not token and not token_file:
        projected = os.environ.get(SA_TOKEN_PATH_ENV, SA_TOKEN_PATH)
        token_file = projected if Path(projected).is_file() else None
    return Access(host.rstrip("/"), token or None, token_file, namespace or None, ca_bundle, service_account)


@dataclass(frozen=True)
class Uploaded:
    pipeline_id: str
    version_id: str
    version_name: str


def preflight(where: Access) -> None:
    """One health call that names what is missing: a login redirect, a refused token, a namespace."""
    token = where.bearer()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    what = "its health check"
    try:
        status, login, data = _within(KFP_TIMEOUTS_S.health, where.host, what, _health, where, headers)
    except urllib3.exceptions.HTTPError as error:
        raise _failed(where.host, what, error) from error
    if status in (301, 302, 303, 307, 308):
        raise KFPError(f"KFP endpoint {where.host} redirected to a login page ({login}): {TO_SET}")
    if status == 401:
        said = "refused the token" if token else "needs a token"
        raise KFPError(f"KFP endpoint {where.host} {said} (HTTP 401): {TO_SET}")
    if status == 403:
        raise KFPError(f"KFP endpoint {where.host} forbids this token (HTTP 403): {TO_SET}")
    if status != 200:
        raise KFPError(f"KFP endpoint {where.host} answered HTTP {status} to its health check")
    try:
        multi_user = json.loads(data).get("multi_user", False)
    except ValueError as error:
        raise KFPError(f"KFP endpoint {where.host} answered its health check with something not JSON") from error
    if multi_user and not where.namespace:
        raise KFPError(f"KFP at {where.host} is multi-user: pass --namespace (your Kubeflow profile's namespace)")


def _health(where: Access, headers: dict) -> tuple[int, str, bytes]:
    """The health answer's status, Location and body (200's only)."""
    http = urllib3.PoolManager(ca_certs=where.ca_bundle) if where.ca_bundle else urllib3.PoolManager()
    timeout = urllib3.Timeout(connect=KFP_TIMEOUTS_S.connect, read=KFP_TIMEOUTS_S.read)
    url = f"{where.host}{API}/healthz"
    answer = http.request(
        "GET", url, headers=headers, redirect=False, retries=False, timeout=timeout, preload_content=False
    )
    data = _read_most(answer, HEALTH_ANSWER_MAX) if answer.status == 200 else b""
    return answer.status, answer.headers.get("Location", "?"), data


class _Overlong(urllib3.exceptions.HTTPError):
    """An answer longer than its cap: a failed transfer, as urllib3's own errors are."""


def _read_most(answer: urllib3.BaseHTTPResponse, most: int) -> bytes:
    """`answer`'s body; past `most` bytes, _Overlong and the connection closed."""
    data = answer.read(most + 1)
    if len(data) > most:
        answer.close()
        raise _Overlong(most)
    answer.release_conn()
    return data


@dataclass(frozen=True)
class _Answer:
    """What kfp's REST client reads of an answer (its RESTResponse's source)."""

    status: int
    reason: str | None
    data: bytes
    headers: urllib3.HTTPHeaderDict

    def getheaders(self) -> urllib3.HTTPHeaderDict:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


def _within(seconds: float, host: str, what: str, function, *args, **kwargs):
    """`function(*args, **kwargs)`, or a KFPError once it has run `seconds`. It runs in a daemon
    thread: one left behind on a socket ends at its read timeout or with the process."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # raised again in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"kfp {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise KFPError(f"KFP endpoint {host} did not finish {what} within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _failed(host: str, what: str, error: urllib3.exceptions.HTTPError) -> KFPError:
    cause = getattr(error, "reason", None) or error  # a MaxRetryError holds its last attempt's error
    refused = isinstance(cause, urllib3.exceptions.NewConnectionError)  # urllib3's subclass of a timeout
    if isinstance(cause, urllib3.exceptions.ConnectTimeoutError) and not refused:
        return KFPError(f"KFP endpoint {host} accepted no connection within {KFP_TIMEOUTS_S.connect:g} s ({what})")
    if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
        return KFPError(f"KFP endpoint {host} sent nothing for {KFP_TIMEOUTS_S.read:g} s during {what}")
    if isinstance(cause, _Overlong):
        return KFPError(f"KFP endpoint {host} answered {what} with more than {cause.args[0]:,} bytes")
    return KFPError(f"KFP endpoint {host} is unreachable ({what}): {error}")


def _bounded(client):
    """`client` with a (connect, read) timeout and a capped answer on each request: kfp's Client sets
    no timeout (its constructor's own health call has only `call`'s bound) on the one pool all its
    service APIs share (kfp 2.17 keeps it at `_run_api.api_client`, as at every `_*_api`)."""
    rest = client._run_api.api_client.rest_client
    send = rest.pool_manager.request

    def bounded(*args, timeout=None, preload_content=True, **kwargs):  # kfp's preloads: read here, capped
        limits = timeout or urllib3.Timeout(connect=KFP_TIMEOUTS_S.connect, read=KFP_TIMEOUTS_S.read)
        answer = send(*args, timeout=limits, preload_content=False, **kwargs)
        return _Answer(answer.status, answer.reason, _read_most(answer, API_ANSWER_MAX), answer.headers)

    rest.pool_manager.request = bounded
    return client


def connect(where: Access):
    """A kfp.Client for `where`, after the preflight."""
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    preflight(where)
    credentials = (
        None if where.token or not where.token_file else ServiceAccountTokenVolumeCredentials(where.token_file)
    )
    client = _call(
        where.host,
        "the connection",
        kfp.Client,
        where.host,
        namespace=where.namespace or "kubeflow",
        existing_token=where.token,
        credentials=credentials,
        ssl_ca_cert=where.ca_bundle,
    )
    return _bounded(client)


def _call(host: str, what: str, function, *args, **kwargs):
    """Run one client call within KFP_TIMEOUTS_S.call; an unreachable or silent host or an API error
    becomes a KFPError naming both."""
    from kfp_server_api.exceptions import ApiException, OpenApiException

    try:
        return _within(KFP_TIMEOUTS_S.call, host, what, function, *args, **kwargs)
    except urllib3.exceptions.HTTPError as error:
        raise _failed(host, what, error) from error
    except ApiException as error:
        hint = f": {TO_SET}" if error.status in (401, 403) else f": {error.body}"
        raise KFPError(f"KFP endpoint {host} refused {what}: HTTP {error.status} {error.reason}{hint}") from error
    except OpenApiException as error:  # e.g. an auth proxy's HTML page where JSON was expected
        raise KFPError(f"KFP endpoint {host} answered {what} with something that is not KFP's API: {TO_SET}") from error


def upload(client, host: str, package: str | Path, name: str, namespace: str | None = None) -> Uploaded:
    """The pipeline `name` with a version for this package (named by its content, so uploading the
    same YAML twice reuses the version). With `namespace` (multi-user KFP) the pipeline is the
    namespace's own, looked up and uploaded there, never the shared one of that name."""
    package = str(package)
    version_name = f"{name}-{hashlib.sha256(Path(package).read_bytes()).hexdigest()[:12]}"
    pipeline_id = _pipeline_id(client, host, name, namespace)
    if pipeline_id is None:
        created = _call(
            host, "the pipeline upload", client.upload_pipeline, package, pipeline_name=name, namespace=namespace
        )
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


def _by_name(name: str) -> str:
    return json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]})


def _pipeline_id(client, host: str, name: str, namespace: str | None) -> str | None:
    """The id of the pipeline `name` in `namespace` (none: the shared ones). kfp's get_pipeline_id
    lists without a namespace, which multi-user KFP answers with the shared pipelines only."""
    listed = _call(host, "the pipeline lookup", client.list_pipelines, filter=_by_name(name), namespace=namespace)
    found = listed.pipelines or []
    if len(found) > 1:
        raise KFPError(f"KFP at {host} has {len(found)} pipelines named {name!r} in {namespace or 'the shared ones'}")
    return found[0].pipeline_id if found else None


def _listed_versions(client, host: str, pipeline_id: str, version_name: str) -> list:
    listed = _call(
        host, "the version listing", client.list_pipeline_versions, pipeline_id, filter=_by_name(version_name)
    )
    return listed.pipeline_versions or []


def ui_link(host: str, run_id: str) -> str:
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def _uploaded_into(where: Access, package: str | Path, name: str, experiment: str) -> tuple:
    """A client, the pipeline version of `package`, and the id of `experiment` in the namespace."""
    client = connect(where)
    uploaded = upload(client, where.host, package, name, where.namespace)
    found = _call(where.host, "the experiment", client.create_experiment, experiment, namespace=where.namespace)
    return client, uploaded, found.experiment_id


def submit(where: Access, package: str | Path, params: dict, experiment: str, name: str = "trackrec") -> dict:
    """Upload (or reuse) the pipeline version and start one run in `experiment`; returns ids and the UI link."""
    client, uploaded, experiment_id = _uploaded_into(where, package, name, experiment)
    host = where.host
    run = _call(
        host,
        "the run",
        client.run_pipeline,
        experiment_id,
        f"{uploaded.version_name}-run",
        params=params,
        pipeline_id=uploaded.pipeline_id,
        version_id=uploaded.version_id,
        service_account=where.service_account,
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
    where: Access,
    package: str | Path,
    params: dict,
    experiment: str,
    cron: str,
    job: str = "trackrec-refresh",
    name: str = "trackrec-refresh",
    replaces: tuple[str, ...] = (),
) -> dict:
    """Create the recurring run `job`: `cron`, one run at a time, no catch-up of missed runs; then
    remove the earlier ones of that name and of the names in `replaces` (a failed create leaves the
    old schedule running)."""
    check_cron(cron)
    client, uploaded, experiment_id = _uploaded_into(where, package, name, experiment)
    host = where.host
    listed = _call(
        host,
        "the recurring-run listing",
        client.list_recurring_runs,
        experiment_id=experiment_id,
        namespace=where.namespace,
    )
    earlier = [run.recurring_run_id for run in listed.recurring_runs or [] if run.display_name in (job, *replaces)]
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
        service_account=where.service_account,
    )
    for recurring_run_id in earlier:
        _call(host, "the recurring-run deletion", client.delete_recurring_run, recurring_run_id)
    return {"recurring_run_id": created.recurring_run_id, "version_id": uploaded.version_id, "replaced": earlier}
