"""`feast serve` on the repo the publisher wrote answers what the CTR models' arm reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.features.test_publish import embeddings
from trackrec.features import versions
from trackrec.features.store import StoreConfig


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_feast_serve_reads_the_control_arm(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=4)
    table = embeddings([1, 2, 3], seed=1, dim=4)
    versions.publish(table, "v1", config, progress=False)
    versions.assign(config, "control", "v1")
    port = free_port()
    feast = shutil.which("feast", path=str(Path(sys.executable).parent))
    server = subprocess.Popen(
        [feast, "-c", config.repo, "serve", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/get-online-features"
    body = {"feature_service": "ctr_control", "entities": {"user_id": [2, 99]}}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = post(url, body)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "feast serve did not start"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=20)
    columns = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
    assert columns["model_version"]["values"] == ["v1", None]
    assert columns["model_version"]["statuses"] == ["PRESENT", "NOT_FOUND"]
    assert columns["embedding"]["values"][0] == table.embedding[1].tolist()
