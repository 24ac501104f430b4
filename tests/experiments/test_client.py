"""The ranker's read path over HTTP: `feast serve` behind the read-only front, as deployed; the
client puts each user in their arm by the hash and reads that arm's frozen version's vector, even
where the arm's own pointer was forced elsewhere."""

from __future__ import annotations

import threading

import numpy as np

from tests.experiments.test_arms import ab
from tests.features.test_feast_serve import feast_serve
from tests.features.test_publish import DIM, embeddings
from trackrec.experiments import registry
from trackrec.experiments.client import ArmClient
from trackrec.features import versions
from trackrec.features.read_only import front
from trackrec.features.store import StoreConfig, open_store


def test_a_ranker_reads_its_users_arm_features_through_the_read_only_front(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    tables = {"v1": embeddings(range(1, 21), seed=1), "v2": embeddings(range(1, 21), seed=2)}
    for name, table in tables.items():
        versions.publish(table, name, open_store(config), progress=False)
    versions.assign(open_store(config), "control", "v1")  # feast serve's readiness probe reads ctr_control
    experiment = registry.start(open_store(config), ab())
    versions.publish(embeddings(range(1, 21), seed=3), "v3", open_store(config), progress=False)
    versions.assign(open_store(config), "candidate", "v3", force=True)  # the arm's pointer moved anyway
    with feast_serve(config) as upstream:
        server = front("127.0.0.1", 0, upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            client = ArmClient(f"http://127.0.0.1:{server.server_address[1]}", experiment)
            reads = {user: client.read(user) for user in (*range(1, 21), 999)}
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
    assert client.request(5) == {
        "feature_service": f"reccot_{experiment.arm_of(5).feature_version}",
        "entities": {"user_id": [5]},
    }
