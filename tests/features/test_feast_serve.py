"""`feast serve` on the repo the publisher wrote answers what the CTR models' arm reads; behind the
read-only front, as deployed, a reader's writes are refused while reads work."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.features.test_publish import embeddings
from trackrec.features import arms, versions
from trackrec.features.store import StoreConfig, open_store


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


READ = {"feature_service": "ctr_control", "entities": {"user_id": [2, 99]}}


@contextlib.contextmanager
def feast_serve(config: StoreConfig):
    """`feast serve` on 127.0.0.1, once it answers reads; yields its base URL."""
    port = free_port()
    feast = shutil.which("feast", path=str(Path(sys.executable).parent))
    server = subprocess.Popen(
        [feast, "-c", config.repo, "serve", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                post(f"{url}/get-online-features", READ)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "feast serve did not start"
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def published(tmp_path) -> tuple[StoreConfig, object]:
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=4)
    table = embeddings([1, 2, 3], seed=1, dim=4)
    versions.publish(table, "v1", open_store(config), progress=False)
    arms.assign(open_store(config), "control", "v1")
    return config, table


def test_feast_serve_reads_the_control_arm(tmp_path):
    config, table = published(tmp_path)
    with feast_serve(config) as url:
        answer = post(f"{url}/get-online-features", READ)
    columns = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
    assert columns["model_version"]["values"] == ["v1", None]
    assert columns["model_version"]["statuses"] == ["PRESENT", "NOT_FOUND"]
    assert columns["embedding"]["values"][0] == table.embedding[1].tolist()


def test_behind_the_read_only_front_a_reader_reads_but_cannot_write(tmp_path):
    from trackrec.features.read_only import front

    config, table = published(tmp_path)
    with feast_serve(config) as upstream:
        server = front("127.0.0.1", 0, upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        reader = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            assert post(f"{reader}/get-online-features", READ) == post(f"{upstream}/get-online-features", READ)
            row = {"user_id": [2], "embedding": [[9.0] * 4], "reccot": ["forged"], "model_version": ["v1"]}
            row |= {"iteration": [3], "event_timestamp": ["2026-01-01T00:00:00"]}
            forged = {"feature_view_name": "reccot_v1", "df": row}
            for path in ("/write-to-online-store", "/push", "/materialize", "/materialize-incremental"):
                with pytest.raises(urllib.error.HTTPError) as refused:
                    post(f"{reader}{path}", forged)
                assert refused.value.code == 403, path
            answer = post(f"{reader}/get-online-features", READ)
        finally:
            server.shutdown()
            server.server_close()
    columns = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
    assert columns["embedding"]["values"][0] == table.embedding[1].tolist()  # unchanged
