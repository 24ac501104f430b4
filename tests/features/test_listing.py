"""`trackrec features list` (versions and arms, from the registry) and the registry-only commands
(assign, promote, rollback, history, list) run where Redis cannot be reached: only restore, prune and
publish, which touch online rows, ask it first."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from tests.features.test_publish import DIM
from tests.features.test_versions_history import published
from trackrec.cli import app
from trackrec.features import arms, versions
from trackrec.features.store import StoreConfig, open_store

runner = CliRunner()


def features(*args: str, store=None):
    env = {"COLUMNS": "200"} | ({} if store is None else {"TRACKREC_STORE": str(store)})
    return runner.invoke(app, ["features", *args], env=env)


def test_list_names_every_version_and_what_each_arm_reads_and_can_roll_back_to(tmp_path):
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    published(config, "v1", "v2", "v3")
    for name in ("v1", "v2"):
        arms.assign(open_store(config), "control", name)
    arms.assign(open_store(config), "candidate", "v3")
    listed = versions.listing(open_store(config, registry_only=True))
    assert [v["version"] for v in listed["versions"]] == ["v3", "v2", "v1"]  # newest first
    v2 = listed["versions"][1]
    assert v2["complete"] and v2["rows"] == "5" and v2["data_version"] == "d2" and v2["read_by"] == ["control"]
    assert v2["offline"].endswith("offline/v2.parquet")
    by_arm = {arm["arm"]: arm for arm in listed["arms"]}
    assert (by_arm["control"]["version"], by_arm["control"]["rollback"]) == ("v2", ["v1"])
    assert (by_arm["candidate"]["version"], by_arm["candidate"]["rollback"]) == ("v3", [])
    assert by_arm["control"]["last_change"].startswith("assign at ")


def test_the_registry_readers_need_no_redis_and_every_writer_asks_it(tmp_path):
    """An operator's store.yaml names the cluster's Redis, unreachable from where the command runs:
    list and history read only Feast's registry and still work; assign, promote and rollback take
    the writer lease in Redis, so they are refused with the store named before anything changes."""
    config = StoreConfig(repo=str(tmp_path / "repo"), dim=DIM)
    published(config, "v1", "v2")
    arms.assign(open_store(config), "control", "v1")
    arms.assign(open_store(config), "candidate", "v2")
    store = tmp_path / "store.yaml"
    unreachable = {"repo": config.repo, "dim": DIM, "online": "redis", "redis": "127.0.0.1:1"}
    store.write_text(yaml.safe_dump(unreachable))
    result = features("history", "--arm", "control", store=store)
    assert result.exit_code == 0 and "v1" in result.output, result.output
    for command in (("assign", "--arm", "candidate", "--version", "v1"), ("promote",), ("rollback",)):
        refused = features(*command, store=store)
        assert refused.exit_code == 2 and "redis" in refused.output and "127.0.0.1:1" in refused.output, (
            command,
            refused.output,
        )
    result = features("list", "--json", store=store)
    assert result.exit_code == 0, result.output
    reads = {arm["arm"]: arm["version"] for arm in json.loads(result.output)["arms"]}
    assert reads == {"candidate": "v2", "control": "v1"}  # no refused writer changed an arm
    table = features("list", store=store)
    assert table.exit_code == 0 and "killed attempt" not in table.output and "candidate" in table.output
    restore = features("restore", "--version", "v1", store=store)  # writes online rows: Redis first
    assert restore.exit_code == 2 and "online store redis at '127.0.0.1:1' is unreachable" in restore.output
