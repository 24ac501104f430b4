from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.synthetic import collm_rows, write_collm
from trackrec.data.config import DataConfig
from trackrec.stages.prepare_data import prepare_data

PRINT = builtins.print


@pytest.fixture(autouse=True)
def real_print():
    """kfp.local indents its tasks' output by swapping builtins.print, and two of its runs in
    overlapping threads restore each other's swap: the indenting print then outlives them and every
    later test's output is indented. Each test starts and ends with the real one."""
    builtins.print = PRINT
    yield
    builtins.print = PRINT


@pytest.fixture
def collm_root(tmp_path: Path) -> Path:
    """A small CoLLM-format data folder."""
    return write_collm(tmp_path / "data", collm_rows())


@pytest.fixture
def prepared(collm_root: Path, tmp_path: Path) -> Path:
    """The small dataset, prepared."""
    out = tmp_path / "prepared"
    prepare_data(DataConfig(root=str(collm_root)), out)
    return out


def real_data_root() -> Path:
    return Path(os.environ.get("TRACKREC_DATA_DIR") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data")


@pytest.fixture
def real_data() -> Path:
    root = real_data_root()
    if not (root / "collm-ml1m" / "jsonl" / "train_ood2.jsonl.gz").exists():
        pytest.skip(f"the licensed CoLLM ML-1M files are not under {root} (set TRACKREC_DATA_DIR)")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch):
    """A real S3 API (moto's server) on 127.0.0.1; boto3 and s3fs reach it through AWS_* variables."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield boto3.client("s3")
    finally:
        server.stop()


@pytest.fixture
def s3(monkeypatch):
    with moto_s3(monkeypatch) as client:
        yield client


def required_tool(name: str) -> str:
    """The path of a Debian tool `make setup` installs; CI must have it, elsewhere its tests skip."""
    binary = shutil.which(name)
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; make setup installs it with apt-get")
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return binary


class RedisServer:
    """Debian's redis-server on 127.0.0.1, no persistence (as the chart's was): `kill` loses every
    row, `start` brings up an empty one on the same port."""

    def __init__(self):
        self.binary, self.port, self.process = required_tool("redis-server"), free_port(), None
        self.url = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.terminate()
            server.process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


def local_runs(run_dir: Path) -> set[Path]:
    """The pipeline-run folders under a local run folder."""
    root = Path(run_dir) / "artifacts"
    return set(root.iterdir()) if root.is_dir() else set()


def tasks_executed(run_dir: Path, before: set[Path]) -> set[str]:
    """The tasks that runs started after `before` executed themselves (a task answered from
    KFP's cache writes no folder)."""
    return {p.parent.name for run in local_runs(run_dir) - before for p in run.rglob("executor_output.json")}


# The slow tier (`make test-fast` deselects it): kfp.local pipeline runs, real servers that take
# seconds to start or to time out, model training; whole modules, or single tests by node id. One
# list, so a test's tier is stated in one place.
SLOW = (
    "tests/llm/test_pipeline_local.py",
    "tests/llm/test_learning_dynamics.py",
    "tests/llm/test_deepspeed.py",
    "tests/llm/test_training.py",
    "tests/llm/test_sdpo_trainer.py",
    "tests/test_trainjob.py",
    "tests/features/test_feast_serve.py",
    "tests/features/test_writer_lease.py",
    "tests/features/test_listing.py::test_the_registry_readers_need_no_redis_and_every_writer_asks_it",
    "tests/features/test_publish.py::test_a_publish_killed_midway_leaves_readers_on_a_complete_version_and_a_rerun_completes",
    "tests/features/test_online_rows.py::test_prune_sweeps_a_killed_publishs_rows_out_of_a_full_redis",
    "tests/test_reach.py::test_a_publish_on_a_stalled_redis_fails_instead_of_hanging",
    "tests/experiments/test_replay.py::test_a_request_scored_over_http_is_the_request_scored_from_the_repo",
    "tests/experiments/test_client.py::test_a_ranker_reads_its_users_arm_features_through_the_read_only_front",
    "tests/test_prepare_shards.py::test_the_pipeline_fans_prepare_data_out_when_the_settings_ask",
    "tests/test_cli_and_run.py::test_run_then_rerun_is_cached_then_a_config_change_reruns_only_its_stage",
    "tests/test_cli_and_run.py::test_verbose_prints_what_the_tasks_print",
    "tests/llm/test_pipeline_wiring.py::test_kfp_caches_every_task_whose_section_did_not_change",
    "tests/test_kfp_client.py::test_a_health_check_that_never_ends_fails_within_its_bound_naming_the_host",
    "tests/test_kfp_client.py::test_an_api_that_stalls_after_the_health_check_fails_within_its_bound_naming_the_call",
    "tests/test_s3_artifacts.py::test_an_upload_survives_a_server_restart",
)


def pytest_collection_modifyitems(config, items):
    matched = set()
    for item in items:
        for entry in SLOW:
            if item.nodeid == entry or item.nodeid.startswith((entry + "::", entry + "[")):
                item.add_marker(pytest.mark.slow)
                matched.add(entry)
    # A renamed module or test would otherwise drop out of the slow tier silently.
    collected_whole_suite = not config.args or config.args == ["tests"]
    missing = [entry for entry in SLOW if entry not in matched]
    if missing and collected_whole_suite:
        raise pytest.UsageError(f"tests/conftest.py SLOW: no test collected for {missing}")
