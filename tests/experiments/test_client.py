"""The ranker's read path over HTTP: `feast serve` behind the read-only front, as deployed; the
client puts each user in their arm by the hash and reads that arm's frozen version's vector, even
where the arm's own pointer was forced elsewhere."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.experiments.test_arms import ab
from tests.features.test_feast_serve import feast_serve
from tests.features.test_publish import DIM, embeddings
from trackrec import cli
from trackrec.config import TTL_DAYS
from trackrec.experiments import registry
from trackrec.experiments.client import ArmClient
from trackrec.features import arms, reading, versions
from trackrec.features.http_read import COLUMNS, read_over_http
from trackrec.features.read_only import front
from trackrec.features.reading import open_repo
from trackrec.features.store import StoreConfig, StoreError, open_store


def test_a_ranker_reads_its_users_arm_features_through_the_read_only_front(tmp_path, monkeypatch):
    monkeypatch.setattr(cli.console, "width", 250)  # the table unwrapped
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    tables = {"v1": embeddings(range(1, 21), seed=1), "v2": embeddings(range(1, 21), seed=2)}
    for name, table in tables.items():
        versions.publish(table, name, open_store(config), progress=False)
    arms.assign(open_store(config), "control", "v1")  # feast serve's readiness probe reads ctr_control
    experiment = registry.start(open_store(config), ab())
    versions.publish(embeddings(range(1, 21), seed=3), "v3", open_store(config), progress=False)
    arms.assign(open_store(config), "candidate", "v3", force=True)  # the arm's pointer moved anyway
    with feast_serve(config) as upstream:
        server = front("127.0.0.1", 0, upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            client = ArmClient(url, experiment)
            reads = {user: client.read(user) for user in (*range(1, 21), 999)}
            over_http = read_over_http(url, "reccot_v1", [3, 999, 1])
            shown = CliRunner().invoke(cli.app, ["features", "get", "--url", url, "--user", "3", "--user", "999",
                                                 "--version", "v1"])  # fmt: skip
        finally:
            server.shutdown()
            server.server_close()
    for user in range(1, 21):
        got, arm = reads[user], experiment.arm_of(user)
        assert (got.arm, got.feature_version, got.model) == (arm.name, arm.feature_version, arm.model)
        np.testing.assert_array_equal(got.embedding, tables[arm.feature_version].embedding[user - 1])
        assert got.as_of == tables[arm.feature_version].as_of[user - 1] and not got.feature_miss
    assert {reads[u].arm for u in range(1, 21)} == {"control", "candidate"}
    assert reads[999].feature_miss and (reads[999].vector(DIM) == 0).all()  # no snapshot: zeros, as in training
    from_repo = reading.read(open_repo(config.repo), [3, 999, 1], version="v1")
    assert list(over_http.columns) == list(COLUMNS)  # the repo's rows, named for what they are
    assert over_http.feature_version.tolist() == from_repo.model_version.tolist() == ["v1", None, "v1"]
    assert over_http.as_of.tolist()[::2] == from_repo.as_of.tolist()[::2]
    np.testing.assert_array_equal(over_http.embedding[0], from_repo.embedding[0])
    assert over_http.embedding[1] is None and over_http.reccot[1] is None
    assert shown.exit_code == 0 and "feature_version" in shown.output and "model_version" not in shown.output
    assert "v1" in shown.output and "no features" in shown.output, shown.output
    assert client.request(5) == {
        "feature_service": f"reccot_{experiment.arm_of(5).feature_version}",
        "entities": {"user_id": [5]},
    }


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"<html>a proxy's page</html>", "the answer is not JSON"),
        (b'{"metadata": {}}', "not a Feast online-features answer"),
        (b"[" + b"0," * (40 << 10) + b"0]", "an answer over 65536 bytes"),
    ],
)
def test_an_answer_that_is_not_feasts_is_refused_in_one_line(answer, said, monkeypatch):
    """What answers on the feature server's address may be anything: refused by name, bounded."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from trackrec.features import http_read

    monkeypatch.setattr(http_read, "MAX_ANSWER", 64 << 10)

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(StoreError, match=said) as refused:
            read_over_http(f"http://127.0.0.1:{server.server_address[1]}", "reccot_v1", [1])
    finally:
        server.shutdown()
        server.server_close()
    assert "\n" not in str(refused.value) and "127.0.0.1" in str(refused.value)


@settings(max_examples=60, deadline=None)
@given(ttl=st.one_of(st.integers(), st.floats()))
def test_a_ttl_the_store_would_refuse_is_refused_before_any_request(ttl):
    """The reader takes the TTL as StoreConfig does (TTL_DAYS): zero, negative, NaN or a millennium
    would mark every snapshot stale or none; refused by name. Port 9 answers nothing, so a TTL let
    through is seen by the request it then makes."""
    with pytest.raises(StoreError) as refused:
        read_over_http("http://127.0.0.1:9", "reccot_v1", [1], ttl_days=ttl, timeout=0.5)
    said = str(refused.value)
    if TTL_DAYS.outside(ttl) is None:
        assert "unreachable" in said, said
    else:
        assert said.startswith("ttl_days: must be") and "127.0.0.1" not in said, said
