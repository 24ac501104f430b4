"""`trackrec submit` and `trackrec schedule` against a recording KFP API server on 127.0.0.1."""

import time

import pytest
import yaml
from typer.testing import CliRunner

from pipelines import kfp_client
from pipelines.compile import COMPILED, COMPILED_REFRESH
from pipelines.kfp_client import API, KFPError, Timeouts, access, check_cron, submit
from pipelines.settings import Images
from tests.conftest import free_port
from tests.faults import misbehaving_http
from tests.kfp_api_server import KFPApiServer
from trackrec.cli import app

runner = CliRunner()
# the checked-in pipelines, named on purpose: without --package or --settings the CLI refuses
CHECKED_IN, CHECKED_IN_REFRESH = ("--package", str(COMPILED)), ("--package", str(COMPILED_REFRESH))


def cli(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_submit_uploads_then_adds_a_version_and_starts_runs_in_one_experiment():
    with KFPApiServer() as kfp:
        code, output = cli("submit", *CHECKED_IN, "--host", kfp.url, "--param", "shards=4", "--experiment", "ab-test")
        assert code == 0, output
        assert f"{kfp.url}/#/runs/details/run-" in output
        (upload,) = kfp.calls("POST", "/pipelines/upload")
        assert upload["upload"] == COMPILED.read_bytes() and upload["query"]["name"] == ["trackrec"]
        (run,) = kfp.calls("POST", "/runs")
        assert run["body"]["runtime_config"]["parameters"] == {"shards": 4}
        assert run["body"]["pipeline_version_reference"]["pipeline_id"] == "pipeline-1"
        code, output = cli("submit", *CHECKED_IN, "--host", kfp.url, "--experiment", "ab-test")
        assert code == 0, output
        assert len(kfp.calls("POST", "/pipelines/upload")) == 1  # the pipeline exists: a version is added
        (version,) = kfp.calls("POST", "/pipelines/upload_version")
        assert version["upload"] == COMPILED.read_bytes() and version["query"]["pipelineid"] == ["pipeline-1"]
        assert len(kfp.calls("POST", "/experiments")) == 1  # the experiment is found, not made twice
        runs = kfp.calls("POST", "/runs")
        added = kfp.versions["pipeline-1"][-1]
        assert added["display_name"].startswith("trackrec-")  # named by the YAML's content
        assert runs[1]["body"]["pipeline_version_reference"]["pipeline_version_id"] == added["pipeline_version_id"]
        assert runs[0]["body"]["experiment_id"] == runs[1]["body"]["experiment_id"]


def test_schedule_makes_one_recurring_run_for_active_users_and_replaces_it():
    with KFPApiServer() as kfp:
        code, output = cli(
            "schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--cron", "0 0 3 * * *", "--active-within-days", "7"
        )
        assert code == 0, output
        (created,) = kfp.calls("POST", "/recurringruns")
        assert created["body"]["display_name"] == "trackrec-refresh"
        body = created["body"]
        assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
        assert body["max_concurrency"] == 1 and body["no_catchup"] is True and body["mode"] == "ENABLE"
        assert body["runtime_config"]["parameters"] == {"active_within_days": 7}
        (first,) = kfp.recurring
        code, output = cli("schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--cron", "0 30 2 * * *")
        assert code == 0, output
        assert len(kfp.calls("DELETE", f"/recurringruns/{first}")) == 1
        (remaining,) = kfp.recurring.values()
        assert remaining["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
        order = [(r["method"], r["path"].split("/")[-1]) for r in kfp.requests]
        created_again = len(order) - 1 - order[::-1].index(("POST", "recurringruns"))
        assert created_again < order.index(("DELETE", first))  # the new one is made, then the old removed


def test_a_failed_create_leaves_the_old_schedule():
    with KFPApiServer() as kfp:
        assert cli("schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--cron", "0 0 3 * * *")[0] == 0
        before = dict(kfp.recurring)
        kfp.failing = ("POST /recurringruns",)
        code, output = cli("schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--cron", "0 30 2 * * *")
        assert code == 2 and "refused the recurring run: HTTP 500" in output
        assert kfp.recurring == before and kfp.calls("DELETE", f"/recurringruns/{next(iter(before))}") == []


MULTI_USER = {"token": "s3cr3t-token", "namespace": "team-a"}


def test_multi_user_kfp_gets_the_token_namespace_and_service_account_on_every_call(monkeypatch):
    monkeypatch.setenv("KF_PIPELINES_TOKEN", MULTI_USER["token"])
    with KFPApiServer(**MULTI_USER, login_redirect=True) as kfp:
        code, output = cli("submit", *CHECKED_IN, "--host", kfp.url, "--namespace", "team-a")
        assert code == 0, output
        code, output = cli(
            "schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--namespace", "team-a", "--cron", "0 0 3 * * *"
        )
        assert code == 0, output
        assert all(r["headers"].get("authorization") == "Bearer s3cr3t-token" for r in kfp.requests)
        (experiment,) = kfp.calls("POST", "/experiments")
        assert experiment["body"]["namespace"] == "team-a"
        (run,), (recurring,) = kfp.calls("POST", "/runs"), kfp.calls("POST", "/recurringruns")
        assert run["body"]["service_account"] == recurring["body"]["service_account"] == "trackrec-pipeline-runner"


def test_multi_user_kfp_keeps_the_pipeline_in_the_runs_namespace_beside_a_shared_one(monkeypatch):
    monkeypatch.setenv("KF_PIPELINES_TOKEN", MULTI_USER["token"])
    with KFPApiServer(**MULTI_USER) as kfp:
        kfp.pipelines["shared"] = {"pipeline_id": "shared", "display_name": "trackrec", "namespace": None}
        kfp.versions["shared"] = []
        for _ in range(2):
            code, output = cli("submit", *CHECKED_IN, "--host", kfp.url, "--namespace", "team-a")
            assert code == 0, output
        (upload,) = kfp.calls("POST", "/pipelines/upload")  # the second submit found team-a's own
        assert upload["query"]["namespace"] == ["team-a"] and upload["query"]["name"] == ["trackrec"]
        assert {tuple(c["query"]["namespace"]) for c in kfp.calls("GET", "/pipelines")} == {("team-a",)}
        runs = kfp.calls("POST", "/runs")
        assert {r["body"]["pipeline_version_reference"]["pipeline_id"] for r in runs} == {"pipeline-1"}
        assert kfp.versions["shared"] == []  # the shared pipeline of that name is left alone


def test_submit_compiles_with_the_deployments_settings_and_overrides(tmp_path):
    (tmp_path / "settings.yaml").write_text(
        "pipeline_root: s3://ml-team/pipeline-root\n"
        "images: {cpu: registry.example:5000/trackrec/cpu:0.2.0}\n"
        "reach: {redis: ['redis.team.svc:6379'], buckets: [ml-team]}\n"
    )
    (tmp_path / "overrides.yaml").write_text("llm: {iterations: 1}\n")
    with KFPApiServer() as kfp:
        settings = ("--settings", str(tmp_path / "settings.yaml"), "--overrides", str(tmp_path / "overrides.yaml"))
        code, output = cli("submit", "--host", kfp.url, *settings)
        assert code == 0, output
        (upload,) = kfp.calls("POST", "/pipelines/upload")
        pipeline, platform = yaml.safe_load_all(upload["upload"])
        assert upload["upload"] != COMPILED.read_bytes()
        assert pipeline["defaultPipelineRoot"] == "s3://ml-team/pipeline-root"
        images = {e["container"]["image"] for e in pipeline["deploymentSpec"]["executors"].values()}
        assert "registry.example:5000/trackrec/cpu:0.2.0" in images and Images().cpu not in images
        assert '"iterations": 1' in pipeline["root"]["inputDefinitions"]["parameters"]["config"]["defaultValue"]
        assert "redis.team.svc:6379" in upload["upload"].decode()  # the deployment's reach, compiled in


def test_without_settings_or_a_package_nothing_is_sent():
    with KFPApiServer() as kfp:
        for command in (("submit",), ("schedule", "--cron", "0 0 3 * * *")):
            code, output = cli(*command, "--host", kfp.url)
            assert code == 2 and "pass --settings" in output and "checked-in" in output, output
        assert kfp.requests == []


def test_the_projected_service_account_token_is_used_in_a_pod(monkeypatch, tmp_path):
    token = tmp_path / "token"
    token.write_text(MULTI_USER["token"] + "\n")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    monkeypatch.delenv("KF_PIPELINES_TOKEN", raising=False)
    with KFPApiServer(**MULTI_USER) as kfp:
        code, output = cli(
            "schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--namespace", "team-a", "--cron", "0 0 3 * * *"
        )
        assert code == 0, output
        assert {r["headers"].get("authorization") for r in kfp.requests} == {"Bearer s3cr3t-token"}


@pytest.mark.parametrize(
    ("server", "args", "said"),
    [
        ({"login_redirect": True}, [], "redirected to a login page (/dex/auth"),
        ({}, [], "needs a token (HTTP 401)"),
        ({}, ["--token", "wrong"], "refused the token (HTTP 401)"),
        ({}, ["--token", MULTI_USER["token"]], "is multi-user: pass --namespace"),
        ({}, ["--token", MULTI_USER["token"], "--namespace", "team-b"], "refused the pipeline lookup: HTTP 403"),
    ],
)
def test_what_multi_user_kfp_refuses_is_one_line_naming_what_to_set(server, args, said, monkeypatch):
    monkeypatch.delenv("KF_PIPELINES_TOKEN", raising=False)
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", "/nonexistent/token")
    with KFPApiServer(**MULTI_USER, **server) as kfp:
        code, output = cli("submit", *CHECKED_IN, "--host", kfp.url, *args)
        assert code == 2 and said in output and "Traceback" not in output, output
        assert kfp.calls("POST", "/runs") == []


def test_the_refresh_and_the_retrain_are_two_recurring_runs_of_two_pipelines():
    """The daily refresh (active users, no training) and the weekly retrain: each its own pipeline and
    recurring run; scheduling one leaves the other."""
    with KFPApiServer() as kfp:
        legacy = (*CHECKED_IN, "--retrain", "--job", "trackrec-active-users")  # an older release's
        assert cli("schedule", "--host", kfp.url, "--cron", "0 0 3 * * *", *legacy)[0] == 0
        assert cli("schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--cron", "0 0 3 * * *")[0] == 0
        code, output = cli("schedule", *CHECKED_IN, "--host", kfp.url, "--cron", "0 0 4 * * 0", "--retrain")
        assert code == 0, output
        _, refresh, retrain = (call["body"] for call in kfp.calls("POST", "/recurringruns"))
        assert refresh["display_name"] == "trackrec-refresh" and retrain["display_name"] == "trackrec-retrain"
        assert refresh["runtime_config"]["parameters"] == {"active_within_days": 1}
        assert retrain["runtime_config"].get("parameters", {}) == {}  # every user, summarised by the new G
        names = {p["pipeline_id"]: p["display_name"] for p in kfp.pipelines.values()}
        assert names[refresh["pipeline_version_reference"]["pipeline_id"]] == "trackrec-refresh"
        assert names[retrain["pipeline_version_reference"]["pipeline_id"]] == "trackrec"
        assert sorted(r["display_name"] for r in kfp.recurring.values()) == ["trackrec-refresh", "trackrec-retrain"]


@pytest.mark.parametrize("cron", ["0 3 * * *", "every day", "0 0 3 * * * *"])
def test_a_cron_that_is_not_kfps_six_fields_is_refused(cron):
    with pytest.raises(KFPError, match="KFP's cron has 6 fields, seconds first"):
        check_cron(cron)


def test_bad_parameters_fail_before_any_request():
    with KFPApiServer() as kfp:
        code, output = cli("submit", *CHECKED_IN, "--host", kfp.url, "--param", "shards=0", "--param", "colour=red")
        assert code == 2 and "shards: must be >= 1, got 0" in output and "colour: unknown parameter" in output
        code, output = cli(
            "schedule", *CHECKED_IN_REFRESH, "--host", kfp.url, "--cron", "0 0 3 * * *", "--active-within-days", "0"
        )
        assert code == 2 and "must be >= 1 for a recurring refresh" in output
        assert kfp.requests == []


def test_an_unreachable_endpoint_is_named():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(KFPError, match=f"KFP endpoint {url} is unreachable"):
        submit(access(url), COMPILED, {}, "trackrec")
    code, output = cli("submit", *CHECKED_IN, "--host", url)
    assert code == 2 and "is unreachable" in output and "Traceback" not in output


def test_untrusted_text_in_an_error_is_printed_as_written_not_as_markup():
    with KFPApiServer() as kfp:
        code, output = cli("submit", *CHECKED_IN, "--host", kfp.url, "--param", "[red]boom[/red]=1")
        assert code == 2 and "[red]boom[/red]: unknown parameter" in output


HEALTHY = {f"{API}/healthz": b'{"multi_user": false}'}  # a single-user KFP's health answer


@pytest.fixture
def short_timeouts(monkeypatch):
    """Seconds, not minutes. kfp's client tries a silent GET 4 times: 4 reads' silence is under `call`.
    The servers misbehave for 6 s, so a missing bound shows as a late failure naming something else."""
    monkeypatch.setattr(kfp_client, "KFP_TIMEOUTS_S", Timeouts(connect=1, read=0.5, health=2, call=3))


def error_line(server, seconds: float, *args) -> str:
    """The CLI's one error line for `trackrec *args`, which must come within `seconds` of the
    server's first fault."""
    code, output = cli(*args)
    took = time.monotonic() - server.faulted[0][1]
    assert code == 2 and "Traceback" not in output, output
    (line,) = [line for line in output.splitlines() if line.startswith("error: ")]
    assert took < seconds, f"{took:.1f} s: {line}"
    return line


@pytest.mark.parametrize(
    ("fault", "said", "seconds"),
    [
        ("silent", "sent nothing for 0.5 s during its health check", 1.5),  # the read timeout
        ("drip", "did not finish its health check within 2 s", 2.8),  # the health check's deadline
        ("endless", "answered its health check with more than 65,536 bytes", 1.0),  # the size cap
    ],
)
def test_a_health_check_that_never_ends_fails_within_its_bound_naming_the_host(short_timeouts, fault, said, seconds):
    with misbehaving_http(fault) as server:
        line = error_line(server, seconds, "submit", *CHECKED_IN, "--host", server.url)
        assert f"KFP endpoint {server.url} {said}" in line
        assert [request for request, _ in server.faulted] == [f"GET {API}/healthz HTTP/1.1"]


@pytest.mark.parametrize(
    ("fault", "said", "seconds"),
    [
        ("silent", "sent nothing for 0.5 s during the pipeline lookup", 2.8),  # (connect, read) on each request
        ("drip", "did not finish the pipeline lookup within 3 s", 3.8),  # the call's deadline
        ("endless", "answered the pipeline lookup with more than 67,108,864 bytes", 2.5),  # the size cap
    ],
)
def test_an_api_that_stalls_after_the_health_check_fails_within_its_bound_naming_the_call(
    short_timeouts, fault, said, seconds
):
    """The health checks (ours and kfp's) are answered; the first API call meets the fault."""
    with misbehaving_http(fault, answers=HEALTHY) as server:
        line = error_line(server, seconds, "submit", *CHECKED_IN, "--host", server.url)
        assert f"KFP endpoint {server.url} {said}" in line
        assert server.faulted[0][0].startswith(f"GET {API}/pipelines?")
